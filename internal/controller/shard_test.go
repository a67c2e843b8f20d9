package controller

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/sharding"
)

type fixedMembers int

func (n fixedMembers) Count() int { return int(n) }

// Each live shard of a ring calls the bank for its own requests through the same client:
// the connection's budget is split between them, never below one call.
func TestAShardTakesItsShareOfAConnectionsCallBudget(t *testing.T) {
	conn := &resolvedConnection{}
	conn.Spec.CallBudget = &tokensv1alpha1.CallBudget{Calls: ptr.To(int32(60))}
	for _, tc := range []struct {
		members interface{ Count() int }
		want    int
	}{{nil, 60}, {fixedMembers(1), 60}, {fixedMembers(3), 20}, {fixedMembers(7), 8}, {fixedMembers(100), 1}} {
		r := &BankTokenRequestReconciler{RingMembers: tc.members}
		if got := r.budgetLimits(conn).Calls; got != tc.want {
			t.Errorf("%v shards: %d calls, want %d", tc.members, got, tc.want)
		}
	}
}

// An owned Secret rewritten keeps the sharder's labels (the operator's labels replace the
// rest) and, in a shard, carries the shard's own.
func TestAnOwnedSecretKeepsTheSharderLabelsAndCarriesItsShards(t *testing.T) {
	btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pay"}}
	base := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pay", Labels: map[string]string{
		"shard.alpha.sharding.timebertt.dev/other-ring": "x", "stale": "label"}}}
	want := ownedSecret{name: "pay", role: tokensv1alpha1.SecretRoleToken}
	unsharded := desiredSecret(btr, base, want, sharding.Shard{})
	if unsharded.Labels["shard.alpha.sharding.timebertt.dev/other-ring"] != "x" || unsharded.Labels["stale"] != "" {
		t.Errorf("unsharded: %v", unsharded.Labels)
	}
	shard := sharding.Shard{Ring: "tokens", Name: "shard-b"}
	sharded := desiredSecret(btr, base, want, shard)
	if sharded.Labels[shard.ShardLabel()] != "shard-b" || sharded.Labels["shard.alpha.sharding.timebertt.dev/other-ring"] != "x" {
		t.Errorf("sharded: %v", sharded.Labels)
	}
}

// A shard's cache holds only its requests and the owned Secrets labelled with its name; an
// unsharded manager's, every request and every owned Secret.
func TestAShardsCacheSelectsItsRequestsAndOwnedSecrets(t *testing.T) {
	shard := sharding.Shard{Ring: "tokens", Name: "shard-a"}
	mine := labels.Set{shard.ShardLabel(): "shard-a", tokensv1alpha1.SecretRoleLabel: tokensv1alpha1.SecretRoleToken}
	others := labels.Set{shard.ShardLabel(): "shard-b", tokensv1alpha1.SecretRoleLabel: tokensv1alpha1.SecretRoleToken}
	byObject := func(options ctrl.Options, kind client.Object) (cache.ByObject, bool) {
		for obj, by := range options.Cache.ByObject {
			if reflect.TypeOf(obj) == reflect.TypeOf(kind) {
				return by, true
			}
		}
		return cache.ByObject{}, false
	}
	sharded := ManagerOptions(runtime.NewScheme(), nil, shard)
	requests, ok := byObject(sharded, &tokensv1alpha1.BankTokenRequest{})
	if !ok || !requests.Label.Matches(mine) || requests.Label.Matches(others) {
		t.Errorf("a shard's requests: %v", requests.Label)
	}
	secrets, _ := byObject(sharded, &corev1.Secret{})
	if !secrets.Label.Matches(mine) || secrets.Label.Matches(others) || secrets.Label.Matches(labels.Set{shard.ShardLabel(): "shard-a"}) {
		t.Errorf("a shard's owned Secrets: %v", secrets.Label)
	}
	unsharded := ManagerOptions(runtime.NewScheme(), nil, sharding.Shard{})
	if _, ok := byObject(unsharded, &tokensv1alpha1.BankTokenRequest{}); ok {
		t.Error("an unsharded manager selects its requests")
	}
	if secrets, _ := byObject(unsharded, &corev1.Secret{}); !secrets.Label.Matches(others) {
		t.Errorf("an unsharded manager's owned Secrets: %v", secrets.Label)
	}
}
