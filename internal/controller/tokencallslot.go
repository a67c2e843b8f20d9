package controller

import (
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// The reconciler's side of token-call fairness between namespaces: the rules and their
// guarantee are in package tokencalls.

// namespaceBusyRequeue is how soon a reconcile refused a token-call slot comes back
// if its wake-up was lost (the wake-up channel was full); a jitter of up to as much again
// spreads the held-back resources of a namespace.
const namespaceBusyRequeue = 30 * time.Second

// tokenCallWakeups is the room for wake-ups not yet taken by the controller; one dropped
// when it is full is made up for by namespaceBusyRequeue.
const tokenCallWakeups = 1024

// withTokenCallSlot runs call, which calls the bank, within one of the namespace's slots;
// false when the namespace may not take one now and call did not run.
func (r *BankTokenRequestReconciler) withTokenCallSlot(btr *tokensv1alpha1.BankTokenRequest, call func()) bool {
	slot, free := r.tokenCalls.Take(client.ObjectKeyFromObject(btr))
	if !free {
		r.Metrics.observeNamespaceBusy(btr.Namespace)
		return false
	}
	defer slot.Release()
	call()
	return true
}

// namespaceBusyDelay is when a reconcile refused a slot comes back if its wake-up is lost.
func namespaceBusyDelay(uid types.UID, now time.Time) time.Duration {
	return namespaceBusyRequeue + time.Duration(float64(namespaceBusyRequeue)*unitJitter(uid, now.UnixNano()))
}
