package controller

import (
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
// the manager's graceful shutdown already guarantee both. So a reconcile that must read its
// Secrets takes a slot first (one with nothing due never gets here: verifyFromMetadata), and
// gives it back once its decision needs no call, or once the call and its writes are done.
// One whose namespace is at its cap is put back, having read nothing but the cached resource
// and taking its worker for microseconds, and the other namespaces keep the remaining
// workers. It waits for a slot, not a timer. When a slot frees, the first resource waiting in
// the namespace is woken and the slot is held for it until its reconcile has run: it takes
// the slot, or, not reaching that far, passes it on to the next (settle). Waking one per free
// slot, rather than
// every waiter, matters for a backlog: 5,000 resources waiting in one namespace woken at
// every call's end cost 92 reconciles per token (make bench, backlog). namespaceBusyRequeue
// is only a fallback for a wake-up lost.

// DefaultTokenCallsPerNamespace is the share of the workers one namespace's token calls may
// take when the reconciler is not told: a quarter, at least one. One namespace whose every
// endpoint hangs then leaves three quarters of the workers to the others.
func DefaultTokenCallsPerNamespace(workers int) int {
	return max(1, workers/4)
}

// namespaceBusyRequeue is how soon a reconcile held back by its namespace's cap comes back
// if its wake-up was lost (the wake-up channel was full); a jitter of up to as much again
// spreads the held-back resources of a namespace.
const namespaceBusyRequeue = 30 * time.Second

// tokenCallWakeups is the room for wake-ups not yet taken by the controller; one dropped
// when it is full is made up for by namespaceBusyRequeue.
const tokenCallWakeups = 1024

// namespaceTokenCalls counts the token calls under way per namespace, against a cap, and
// keeps the resources waiting for a slot in the order they came.
type namespaceTokenCalls struct {
	mu sync.Mutex
	// limit is the most calls one namespace may have under way; 0: no limit.
	limit    int
	underway map[string]int
	waiting  map[string]*waitingQueue
	// woken are the resources a free slot is held for until their reconcile has run;
	// heldFor counts them per namespace.
	woken   map[types.NamespacedName]struct{}
	heldFor map[string]int
	// wake queues a woken resource; nil: no one listens.
	wake chan event.GenericEvent
}

// waitingQueue is one namespace's resources waiting for a slot, first come first.
type waitingQueue struct {
	names []string
	in    map[string]struct{}
}

// tryAcquire takes a slot for key's namespace (the one held for key, if it was woken), or
// has key wait for one.
func (c *namespaceTokenCalls) tryAcquire(key types.NamespacedName) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lockedWaitIfFull(key) {
		return false
	}
	if c.underway == nil {
		c.underway = map[string]int{}
	}
	c.lockedUnhold(key)
	c.underway[key.Namespace]++
	return true
}

func (c *namespaceTokenCalls) lockedWaitIfFull(key types.NamespacedName) bool {
	if c.limit <= 0 {
		return false
	}
	if _, held := c.woken[key]; held || c.underway[key.Namespace]+c.heldFor[key.Namespace] < c.limit {
		return false
	}
	if c.waiting == nil {
		c.waiting = map[string]*waitingQueue{}
	}
	q := c.waiting[key.Namespace]
	if q == nil {
		q = &waitingQueue{in: map[string]struct{}{}}
		c.waiting[key.Namespace] = q
	}
	if _, in := q.in[key.Name]; !in {
		q.in[key.Name] = struct{}{}
		q.names = append(q.names, key.Name)
	}
	return true
}

// release frees a slot and wakes the next resource waiting in the namespace.
func (c *namespaceTokenCalls) release(namespace string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.underway[namespace]--; c.underway[namespace] <= 0 {
		delete(c.underway, namespace)
	}
	c.lockedWakeForFreeSlots(namespace)
}

// settle ends key's reconcile: a slot held for key and not taken goes to the next waiter.
func (c *namespaceTokenCalls) settle(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, held := c.woken[key]; held {
		c.lockedUnhold(key)
		c.lockedWakeForFreeSlots(key.Namespace)
	}
}

func (c *namespaceTokenCalls) lockedUnhold(key types.NamespacedName) {
	if _, held := c.woken[key]; !held {
		return
	}
	delete(c.woken, key)
	if c.heldFor[key.Namespace]--; c.heldFor[key.Namespace] <= 0 {
		delete(c.heldFor, key.Namespace)
	}
}

// lockedWakeForFreeSlots wakes waiters, first come first, while the namespace has slots
// neither taken nor held.
func (c *namespaceTokenCalls) lockedWakeForFreeSlots(namespace string) {
	q := c.waiting[namespace]
	for q != nil && len(q.names) > 0 && c.underway[namespace]+c.heldFor[namespace] < c.limit {
		name := q.names[0]
		q.names = q.names[1:]
		delete(q.in, name)
		key := types.NamespacedName{Namespace: namespace, Name: name}
		if c.woken == nil {
			c.woken, c.heldFor = map[types.NamespacedName]struct{}{}, map[string]int{}
		}
		c.woken[key] = struct{}{}
		c.heldFor[namespace]++
		select {
		case c.wake <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}}:
		default: // full (or no listener): namespaceBusyRequeue brings it back to its held slot
		}
	}
	if q != nil && len(q.names) == 0 {
		delete(c.waiting, namespace)
	}
}

// callsBank says whether acting on d calls the bank: for a token, or to revoke grants that
// are due (a revocation endpoint can hang as long as a token endpoint).
func (r *BankTokenRequestReconciler) callsBank(d decision, g *gathered, now time.Time) bool {
	return d.action == actObtain || ((d.action == actKeep || d.action == actWait) && r.revocationsDue(g, now))
}

// tokenCallSlot is one of a namespace's token-call slots, taken by one reconcile.
type tokenCallSlot struct {
	calls     *namespaceTokenCalls
	namespace string
	released  bool
}

// take takes a slot for key's namespace, or has key wait for one (false).
func (c *namespaceTokenCalls) take(key types.NamespacedName) (*tokenCallSlot, bool) {
	if !c.tryAcquire(key) {
		return nil, false
	}
	return &tokenCallSlot{calls: c, namespace: key.Namespace}, true
}

// release gives the slot back; again, it does nothing.
func (s *tokenCallSlot) release() {
	if s.released {
		return
	}
	s.released = true
	s.calls.release(s.namespace)
}

// withTokenCallSlot runs call, which calls the bank, within one of the namespace's slots;
// false when the namespace is at its cap and call did not run.
func (r *BankTokenRequestReconciler) withTokenCallSlot(btr *tokensv1alpha1.BankTokenRequest, call func()) bool {
	slot, free := r.tokenCalls.take(client.ObjectKeyFromObject(btr))
	if !free {
		r.Metrics.observeNamespaceBusy(btr.Namespace)
		return false
	}
	defer slot.release()
	call()
	return true
}

// namespaceBusyDelay is when a reconcile held back by its namespace's cap comes back.
func namespaceBusyDelay(uid types.UID, now time.Time) time.Duration {
	return namespaceBusyRequeue + time.Duration(float64(namespaceBusyRequeue)*unitJitter(uid, now.UnixNano()))
}
