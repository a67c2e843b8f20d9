package controller

import (
	"context"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// What brings the two sides of a shared grant back: a change of a holder's token or health
// brings its consumers (a renewal reaches every consumer at once), and a change of a
// request that may read a grant (created, deleted, its scope or connection changed, refused
// or admitted, its output Secret holding another grant's token) brings the holders whose
// count of readers it changes. A connection's spec change, or a Namespace's labels, reach
// the holders through the connection watches (a holder names its connection), and through
// its consumers' status.

// watchSharedGrants adds the shared-grant watch to the controller being built.
func (r *BankTokenRequestReconciler) watchSharedGrants(b *builder.Builder, cache client.Reader) *builder.Builder {
	return b.Watches(&tokensv1alpha1.BankTokenRequest{}, handler.EnqueueRequestsFromMapFunc(r.sharedGrantNeighbours(cache)),
		builder.WithPredicates(predicate.Funcs{UpdateFunc: r.sharedGrantChanged}))
}

// sharedGrantNeighbours maps a holder to its consumers and a request to the existing holders
// whose grant it reads or would read (both, for an update: old and new are mapped).
func (r *BankTokenRequestReconciler) sharedGrantNeighbours(cache client.Reader) handler.MapFunc {
	return func(ctx context.Context, obj client.Object) []reconcile.Request {
		btr, ok := obj.(*tokensv1alpha1.BankTokenRequest)
		if !ok {
			return nil
		}
		if r.isSharedGrantHolder(btr) {
			return listRequests(ctx, cache, client.MatchingFields{sharedGrantIndex: client.ObjectKeyFromObject(btr).String()})
		}
		var holders []reconcile.Request
		for _, key := range r.sharedGrantKeys(btr) {
			namespace, name, _ := strings.Cut(key, "/")
			holder := types.NamespacedName{Namespace: namespace, Name: name}
			// Every request through a connection has a would-be holder; most never exist.
			if err := cache.Get(ctx, holder, &tokensv1alpha1.BankTokenRequest{}); err == nil {
				holders = append(holders, reconcile.Request{NamespacedName: holder})
			}
		}
		return holders
	}
}

// sharedGrantChanged says whether an update matters to the other side: for a holder, a
// change its consumers mirror; for another request, one that may change a holder's count.
func (r *BankTokenRequestReconciler) sharedGrantChanged(e event.UpdateEvent) bool {
	before, okBefore := e.ObjectOld.(*tokensv1alpha1.BankTokenRequest)
	after, okAfter := e.ObjectNew.(*tokensv1alpha1.BankTokenRequest)
	switch {
	case !okBefore || !okAfter:
		return false
	case before.DeletionTimestamp.IsZero() != after.DeletionTimestamp.IsZero():
		return true
	case r.isSharedGrantHolder(after):
		return !slices.Equal(mirroredByConsumers(before), mirroredByConsumers(after))
	}
	keys := r.sharedGrantKeys(after)
	if len(keys) == 0 && len(r.sharedGrantKeys(before)) == 0 {
		return false
	}
	return !slices.Equal(r.sharedGrantKeys(before), keys) ||
		!equality.Semantic.DeepEqual(before.Status.SharedGrant, after.Status.SharedGrant) ||
		conditionReason(before, tokensv1alpha1.ConditionReady) != conditionReason(after, tokensv1alpha1.ConditionReady) ||
		conditionReason(before, tokensv1alpha1.ConditionStalled) != conditionReason(after, tokensv1alpha1.ConditionStalled)
}

// mirroredByConsumers is what of a holder's status its consumers copy: the token's times and
// the conditions' states and reasons (not the Ready message, which counts its readers, or a
// holder would bring all its consumers back for every one added).
func mirroredByConsumers(holder *tokensv1alpha1.BankTokenRequest) []string {
	status := &holder.Status
	mirrored := []string{timeOrEmpty(status.IssuedAt), timeOrEmpty(status.ExpiresAt), timeOrEmpty(status.RenewalTime)}
	for _, t := range []string{tokensv1alpha1.ConditionReady, tokensv1alpha1.ConditionStalled, tokensv1alpha1.ConditionReconciling} {
		if c := meta.FindStatusCondition(status.Conditions, t); c != nil {
			mirrored = append(mirrored, t, string(c.Status), c.Reason)
		}
	}
	return mirrored
}

// conditionReason is the reason of btr's condition of type t, "" when absent.
func conditionReason(btr *tokensv1alpha1.BankTokenRequest, t string) string {
	if c := meta.FindStatusCondition(btr.Status.Conditions, t); c != nil {
		return c.Reason
	}
	return ""
}

func timeOrEmpty(t *metav1.Time) string {
	if t == nil {
		return ""
	}
	return formatTime(t.Time)
}
