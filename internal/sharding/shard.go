// Package sharding is this operator's side of kubernetes-controller-sharding
// (github.com/timebertt/kubernetes-controller-sharding, docs/implement-sharding.md): a
// sharder assigns each BankTokenRequest of a ControllerRing to one shard by a label, and
// each shard (one manager) holds a Lease of its own instead of taking part in leader
// election, caches only the objects labelled with its name, and lets go of an object the
// sharder drains.
//
// The protocol is written here from the project's documentation rather than imported: its
// Go module is not served by the module proxy this project builds from, and the protocol is
// three label names and a labelled Lease.
package sharding

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The protocol's names (pkg/apis/sharding/v1alpha1 of kubernetes-controller-sharding).
const (
	// LabelControllerRing on a shard's Lease names the ring it is a member of.
	LabelControllerRing = "alpha.sharding.timebertt.dev/controllerring"
	// LabelShardPrefix + ring on an object names the shard responsible for it.
	LabelShardPrefix = "shard.alpha.sharding.timebertt.dev/"
	// LabelDrainPrefix + ring on an object asks its shard to stop working on it and to remove
	// the shard and drain labels, so that the sharder assigns it to another shard. Its value
	// does not matter.
	LabelDrainPrefix = "drain.alpha.sharding.timebertt.dev/"
)

// Shard is this manager's place in a ring; the zero value is an unsharded manager, which
// works on every object.
type Shard struct {
	// Ring is the ControllerRing's name.
	Ring string
	// Name is the shard's: its Lease's name and holder identity, and the value of the shard
	// label on the objects assigned to it.
	Name string
}

// Enabled says whether the manager is a shard of a ring.
func (s Shard) Enabled() bool { return s.Ring != "" }

// ShardLabel is the label that names an object's shard in this ring.
func (s Shard) ShardLabel() string { return LabelShardPrefix + s.Ring }

// DrainLabel is the label by which the sharder drains an object from its shard in this ring.
func (s Shard) DrainLabel() string { return LabelDrainPrefix + s.Ring }

// Validate says what is wrong with a ring or shard name: the ring's name is the name part of
// two label keys, the shard's name a label value and a Lease's name.
func (s Shard) Validate() error {
	if !s.Enabled() {
		return nil
	}
	if errs := validation.IsQualifiedName(s.ShardLabel()); len(errs) > 0 {
		return fmt.Errorf("controller ring name %q cannot be part of the label key %s: %s", s.Ring, s.ShardLabel(), strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(s.Name); len(errs) > 0 {
		return fmt.Errorf("shard name %q is not a valid Lease name: %s", s.Name, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(s.Name); len(errs) > 0 {
		return fmt.Errorf("shard name %q is not a valid label value: %s", s.Name, strings.Join(errs, "; "))
	}
	return nil
}

// Selector selects the objects assigned to this shard: what its caches hold. Objects being
// drained from it still carry its label, so the drain reaches it.
func (s Shard) Selector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{s.ShardLabel(): s.Name})
}

// AssignedHere says whether obj is this shard's to work on: always for an unsharded manager.
func (s Shard) AssignedHere(obj metav1.Object) bool {
	return !s.Enabled() || obj.GetLabels()[s.ShardLabel()] == s.Name
}

// Draining says whether the sharder asks this shard to let go of obj.
func (s Shard) Draining(obj metav1.Object) bool {
	if !s.Enabled() {
		return false
	}
	_, drain := obj.GetLabels()[s.DrainLabel()]
	return drain
}

// IsShardingLabel says whether key is a shard or drain label of any ring: labels the
// sharder owns, which the operator keeps when it rewrites an object's labels.
func IsShardingLabel(key string) bool {
	return strings.HasPrefix(key, LabelShardPrefix) || strings.HasPrefix(key, LabelDrainPrefix)
}
