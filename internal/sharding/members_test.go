package sharding

import (
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestMembersCountOnlyTheRingsLiveShards(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	lease := func(name, holder, ring string, renewed time.Duration) *coordinationv1.Lease {
		return &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: name, Labels: map[string]string{LabelControllerRing: ring}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(holder), LeaseDurationSeconds: ptr.To(int32(15)),
				RenewTime: &metav1.MicroTime{Time: now.Add(-renewed)}},
		}
	}
	scheme := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	reader := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		lease("a", "a", "tokens", time.Second),
		lease("b", "b", "tokens", 5*time.Second),
		lease("c", "c", "tokens", 20*time.Second),                  // expired
		lease("d", "shardlease-controller", "tokens", time.Second), // taken by the sharder: dead
		lease("e", "e", "other-ring", time.Second),
	).Build()
	m := &Members{Reader: reader, Namespace: "ops", Shard: Shard{Ring: "tokens", Name: "a"}, Now: func() time.Time { return now }}
	if got := m.Count(); got != 1 {
		t.Errorf("before a listing: %d, want 1 (this shard)", got)
	}
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := m.Count(); got != 2 {
		t.Errorf("%d live shards, want 2", got)
	}
}
