package sharding

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestShardLabelsFollowTheProtocolsNames(t *testing.T) {
	s := Shard{Ring: "bank-tokens", Name: "manager-0"}
	if got := s.ShardLabel(); got != "shard.alpha.sharding.timebertt.dev/bank-tokens" {
		t.Errorf("shard label %q", got)
	}
	if got := s.DrainLabel(); got != "drain.alpha.sharding.timebertt.dev/bank-tokens" {
		t.Errorf("drain label %q", got)
	}
	if !IsShardingLabel(s.ShardLabel()) || !IsShardingLabel(s.DrainLabel()) || IsShardingLabel("tokens.banktoken.io/secret-role") {
		t.Error("IsShardingLabel must name the shard and drain labels of any ring, and only them")
	}
}

func TestAnUnshardedManagerWorksOnEveryObjectAndIsNeverDrained(t *testing.T) {
	obj := &metav1.ObjectMeta{Labels: map[string]string{"drain.alpha.sharding.timebertt.dev/x": "true"}}
	if s := (Shard{}); !s.AssignedHere(obj) || s.Draining(obj) {
		t.Error("an unsharded manager must work on every object and never let one go")
	}
}

func TestAShardWorksOnlyOnItsObjectsAndSeesItsDrains(t *testing.T) {
	s := Shard{Ring: "x", Name: "a"}
	mine := &metav1.ObjectMeta{Labels: map[string]string{s.ShardLabel(): "a"}}
	other := &metav1.ObjectMeta{Labels: map[string]string{s.ShardLabel(): "b"}}
	drained := &metav1.ObjectMeta{Labels: map[string]string{s.ShardLabel(): "a", s.DrainLabel(): "true"}}
	if !s.AssignedHere(mine) || s.AssignedHere(other) || s.AssignedHere(&metav1.ObjectMeta{}) {
		t.Error("a shard works on the objects labelled with its name only")
	}
	if s.Draining(mine) || !s.Draining(drained) || !s.Selector().Matches(labels.Set(drained.Labels)) {
		t.Error("a drained object must still be in the shard's cache and be seen as drained")
	}
}

func TestShardNamesThatCannotBeLabelsOrLeasesAreRefused(t *testing.T) {
	for _, s := range []Shard{
		{Ring: strings.Repeat("r", 64), Name: "a"},
		{Ring: "ring", Name: "Manager_0"},
		{Ring: "ring", Name: strings.Repeat("a", 64)},
	} {
		if s.Validate() == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	if err := (Shard{Ring: "bank-tokens", Name: "bank-token-operator-7d9f-x2x4z"}).Validate(); err != nil {
		t.Error(err)
	}
}
