package sharding

import (
	"context"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// membersRefresh is how often the ring's Leases are listed: a handful of objects.
const membersRefresh = 10 * time.Second

// Members counts the live shards of the ring, from their Leases as the sharder reads them: a
// Lease labelled with the ring, held under its own name, renewed within its duration. A
// connection's call budget is split between them (docs/scaling.md): each shard calls its
// bank for its own requests only, and the bank limits the client, not the shard.
type Members struct {
	// Reader lists Leases; the apiserver's, so that no cache of Leases is kept.
	Reader    client.Reader
	Namespace string
	Shard     Shard
	// Now is the clock the Leases' renewals are judged by; time.Now when nil.
	Now func() time.Time

	count atomic.Int64
}

// Count is the number of live shards seen at the last listing, this one counted: at least 1.
func (m *Members) Count() int {
	return max(1, int(m.count.Load()))
}

// Start lists the ring's Leases now and every membersRefresh until ctx ends; a failed
// listing keeps the last count.
func (m *Members) Start(ctx context.Context) error {
	for {
		if err := m.Refresh(ctx); err != nil {
			logf.FromContext(ctx).Info("listing the shard Leases of the ring failed; keeping the last count", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(membersRefresh):
		}
	}
}

// Refresh counts the live shards once.
func (m *Members) Refresh(ctx context.Context) error {
	leases := &coordinationv1.LeaseList{}
	if err := m.Reader.List(ctx, leases, client.InNamespace(m.Namespace), client.MatchingLabels{LabelControllerRing: m.Shard.Ring}); err != nil {
		return err
	}
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	live := int64(0)
	for i := range leases.Items {
		if leaseLive(&leases.Items[i], now) {
			live++
		}
	}
	m.count.Store(live)
	return nil
}

// leaseLive: held by the shard it names, and renewed within its duration.
func leaseLive(l *coordinationv1.Lease, now time.Time) bool {
	spec := l.Spec
	if spec.HolderIdentity == nil || *spec.HolderIdentity != l.Name || spec.RenewTime == nil || spec.LeaseDurationSeconds == nil {
		return false
	}
	return now.Before(spec.RenewTime.Add(time.Duration(*spec.LeaseDurationSeconds) * time.Second))
}
