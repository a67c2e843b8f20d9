package referencewatch

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

func objectAt(name, version string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Namespace: "payments", Name: name, ResourceVersion: version,
		Labels: map[string]string{"team": "treasury"}, Annotations: map[string]string{"note": "dropped"},
	}}
}

// TestNameVersionsReportsEveryChange drives the store the way a reflector does, including a
// relist after a gap in which objects changed, appeared and went without events.
func TestNameVersionsReportsEveryChange(t *testing.T) {
	var changed, initial []string
	store := newNameVersions(func(name string, first bool) {
		changed = append(changed, name)
		if first {
			initial = append(initial, name)
		}
	})
	expect := func(step string, want ...string) {
		t.Helper()
		slices.Sort(changed)
		if !slices.Equal(changed, want) {
			t.Errorf("%s: reported %v, want %v", step, changed, want)
		}
		changed = nil
	}

	if store.HasSynced() {
		t.Fatal("synced before the first list")
	}
	must(t, store.Replace([]any{objectAt("credentials", "1"), objectAt("ca", "2")}, "2"))
	slices.Sort(initial)
	if !slices.Equal(initial, []string{"ca", "credentials"}) {
		t.Errorf("the first list's names were reported as initial: %v", initial)
	}
	initial = nil
	expect("first list", "ca", "credentials")
	if v, ok := store.Version("credentials"); !ok || v != "1" {
		t.Errorf("version of credentials after the first list: %q %v, want 1", v, ok)
	}
	if !store.HasSynced() || !store.Has("credentials") || store.Has("missing") {
		t.Fatalf("after the first list: synced %v, has credentials %v, has missing %v",
			store.HasSynced(), store.Has("credentials"), store.Has("missing"))
	}

	must(t, store.Update(objectAt("credentials", "3")))
	expect("update", "credentials")
	must(t, store.Add(objectAt("ca", "2")))
	expect("the same version again (a watch restarting)")
	must(t, store.Add(objectAt("client-cert", "4")))
	expect("add", "client-cert")
	must(t, store.Delete(toolscache.DeletedFinalStateUnknown{Key: "payments/client-cert", Obj: objectAt("client-cert", "4")}))
	expect("delete through a tombstone", "client-cert")
	must(t, store.Delete(objectAt("never-seen", "5")))
	expect("deleting an unknown object")

	// The watch could not resume: meanwhile credentials changed, ca went and other came.
	must(t, store.Replace([]any{objectAt("credentials", "7"), objectAt("other", "6")}, "7"))
	expect("relist", "ca", "credentials", "other")
	if store.Has("ca") || !store.Has("other") {
		t.Errorf("after the relist: has ca %v, has other %v", store.Has("ca"), store.Has("other"))
	}
	must(t, store.Replace([]any{objectAt("credentials", "7"), objectAt("other", "6")}, "8"))
	expect("relist with nothing changed")
	if len(initial) != 0 {
		t.Errorf("names after the first list reported as initial: %v", initial)
	}
	if v, _ := store.Version("credentials"); v != "7" {
		t.Errorf("version of credentials after the relist: %q, want 7", v)
	}
}

func TestNameVersionsTransformerKeepsOnlyIdentity(t *testing.T) {
	out, err := newNameVersions(func(string, bool) {}).Transformer()(objectAt("credentials", "9"))
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*metav1.PartialObjectMetadata)
	want := metav1.ObjectMeta{Namespace: "payments", Name: "credentials", ResourceVersion: "9"}
	if got.Name != want.Name || got.Namespace != want.Namespace || got.ResourceVersion != want.ResourceVersion ||
		got.Labels != nil || got.Annotations != nil {
		t.Errorf("transformed to %+v, want only %+v", got.ObjectMeta, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
