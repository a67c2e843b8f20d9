package referencewatch

import "testing"

// A store answers only once it has listed: before, a name is unknown, never absent.
func TestAnUnsyncedOrUnwatchedStoreKnowsNothing(t *testing.T) {
	w := NewForTest()
	must(t, w.Seed("ConfigMap", "payments"))
	if w.SecretKnownAbsent("payments", "missing") {
		t.Error("a Secret store that has not listed said a name is absent")
	}
	if _, ok := w.VersionOf("Secret", "payments", "credentials"); ok {
		t.Error("a Secret store that has not listed gave a version")
	}
	if w.SecretKnownAbsent("elsewhere", "missing") {
		t.Error("an unwatched namespace said a name is absent")
	}

	must(t, w.Seed("Secret", "payments", objectAt("credentials", "4")))
	if v, ok := w.VersionOf("Secret", "payments", "credentials"); !ok || v != "4" {
		t.Errorf("version of credentials: %q %v, want 4", v, ok)
	}
	if _, ok := w.VersionOf("ConfigMap", "payments", "credentials"); ok {
		t.Error("a Secret's version was given for a ConfigMap of its name")
	}
	if !w.SecretKnownAbsent("payments", "missing") || w.SecretKnownAbsent("payments", "credentials") {
		t.Error("a listed Secret store did not tell a missing name from a held one")
	}
}
