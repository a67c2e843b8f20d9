package controller

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Fairness between namespaces. Every namespace shares the controller's workers, and a token
// call holds its worker until the bank answers or --token-request-timeout passes: twenty
// resources pointed at an endpoint that accepts connections and never answers would hold
// every worker, and another namespace's due renewal would wait behind them.
//
// The bound is put on token calls per namespace, where a worker would block. controller-
// runtime's queue cannot give it: its priority queue orders the items that are ready, and
// its rate limiter paces how often an item comes back, but neither bounds how long a worker
// stays inside Reconcile, nor knows which items share a tenant. Running token calls off the
// worker would free it, but a renewal is a sequence (mark the refresh token in flight, call,
// write the new refresh token, then the output Secret) that must not be started twice or
// cut short on shutdown; the worker, which the queue never gives two items of one key, and
// the manager's graceful shutdown already guarantee both. So a reconcile whose namespace is
// at its cap is put back, having read nothing but the cached resource and taking its worker
// for microseconds, and the other namespaces keep the remaining workers. It waits for a slot,
// not a timer: when a call of its namespace ends, the waiting resources are queued again at
// once (a renewal held back behind a quick call is late by milliseconds, not seconds), with
// namespaceBusyRequeue as a fallback.

// DefaultTokenCallsPerNamespace is the share of the workers one namespace's token calls may
// take when the reconciler is not told: a quarter, at least one. One namespace whose every
// endpoint hangs then leaves three quarters of the workers to the others.
func DefaultTokenCallsPerNamespace(workers int) int {
	return max(1, workers/4)
}

// namespaceBusyRequeue is how soon a reconcile held back by its namespace's cap comes back
// if no slot was announced (the wake-up channel was full); a jitter of up to as much again
// spreads the held-back resources of a namespace.
const namespaceBusyRequeue = 2 * time.Second

// tokenCallWakeups is the room for wake-ups not yet taken by the controller; one dropped
// when it is full is made up for by namespaceBusyRequeue.
const tokenCallWakeups = 1024

// namespaceTokenCalls counts the token calls under way per namespace, against a cap, and
// remembers the resources waiting for a slot.
type namespaceTokenCalls struct {
	mu sync.Mutex
	// limit is the most calls one namespace may have under way; 0: no limit.
	limit    int
	underway map[string]int
	waiting  map[string]map[string]struct{} // namespace -> names
	// wake queues a waiting resource again when its namespace's call ends; nil: no one listens.
	wake chan event.GenericEvent
}

// full says whether key's namespace is at its cap; if so, key waits for a slot.
func (c *namespaceTokenCalls) full(key types.NamespacedName) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lockedWaitIfFull(key)
}

// tryAcquire takes a slot for key's namespace, or has key wait for one.
func (c *namespaceTokenCalls) tryAcquire(key types.NamespacedName) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lockedWaitIfFull(key) {
		return false
	}
	namespace := key.Namespace
	if c.underway == nil {
		c.underway = map[string]int{}
	}
	c.underway[namespace]++
	return true
}

func (c *namespaceTokenCalls) lockedWaitIfFull(key types.NamespacedName) bool {
	if c.limit <= 0 || c.underway[key.Namespace] < c.limit {
		return false
	}
	if c.waiting == nil {
		c.waiting = map[string]map[string]struct{}{}
	}
	if c.waiting[key.Namespace] == nil {
		c.waiting[key.Namespace] = map[string]struct{}{}
	}
	c.waiting[key.Namespace][key.Name] = struct{}{}
	return true
}

// release frees a slot and queues every resource waiting in the namespace: the first to
// come takes the slot, the others wait again. Waking all rather than one keeps a resource
// that no longer needs a call from holding the rest back.
func (c *namespaceTokenCalls) release(namespace string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.underway[namespace]--; c.underway[namespace] <= 0 {
		delete(c.underway, namespace)
	}
	for name := range c.waiting[namespace] {
		select {
		case c.wake <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}}:
		default: // full (or no listener): namespaceBusyRequeue brings it back
		}
	}
	delete(c.waiting, namespace)
}

// actWithinNamespaceShare acts on the decision, taking one of the namespace's token-call
// slots when the reconcile calls the bank: for a token, or to revoke grants that are due
// (a revocation endpoint can hang as long as a token endpoint). acted is false when the
// namespace is at its cap: nothing was done, and the reconcile is to come back after
// namespaceBusyDelay.
func (r *BankTokenRequestReconciler) actWithinNamespaceShare(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, d decision) (o outcome, acted bool) {
	callsBank := d.action == actObtain || ((d.action == actKeep || d.action == actWait) && r.revocationsDue(g, r.Clock.Now()))
	if !callsBank {
		return r.act(ctx, btr, g, d), true
	}
	acted = r.withTokenCallSlot(btr, func() { o = r.act(ctx, btr, g, d) })
	return o, acted
}

// withTokenCallSlot runs call, which calls the bank, within one of the namespace's slots;
// false when the namespace is at its cap and call did not run.
func (r *BankTokenRequestReconciler) withTokenCallSlot(btr *tokensv1alpha1.BankTokenRequest, call func()) bool {
	if !r.tokenCalls.tryAcquire(client.ObjectKeyFromObject(btr)) {
		r.Metrics.observeNamespaceBusy(btr.Namespace)
		return false
	}
	defer r.tokenCalls.release(btr.Namespace)
	call()
	return true
}

// namespaceBusyDelay is when a reconcile held back by its namespace's cap comes back.
func namespaceBusyDelay(uid types.UID, now time.Time) time.Duration {
	return namespaceBusyRequeue + time.Duration(float64(namespaceBusyRequeue)*unitJitter(uid, now.UnixNano()))
}
