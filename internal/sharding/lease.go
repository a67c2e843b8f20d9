package sharding

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// NewLease is the shard's Lease as the sharder expects it (docs/implement-sharding.md,
// "Shard Lease"): named after the shard, held under the shard's name as holder identity,
// labelled with the ring. The manager keeps it with its leader-election machinery, so that
// its controllers run only while it holds it, and releases it on a clean shutdown, which
// makes the sharder move the shard's objects at once. client-go's Lease lock takes labels
// and keeps other labels on the Lease (the sharder writes a state label there).
func NewLease(config *rest.Config, namespace string, s Shard) (resourcelock.Interface, error) {
	if !s.Enabled() {
		return nil, fmt.Errorf("a shard Lease needs a controller ring")
	}
	if namespace == "" {
		return nil, fmt.Errorf("the namespace of shard %s's Lease is unknown: give --leader-election-namespace or POD_NAMESPACE", s.Name)
	}
	config = rest.CopyConfig(config)
	rest.AddUserAgent(config, "shard-lease")
	clients, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	return resourcelock.NewWithLabels(resourcelock.LeasesResourceLock, namespace, s.Name, clients.CoreV1(), clients.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: s.Name}, map[string]string{LabelControllerRing: s.Ring})
}
