// Package tokencalls keeps the token calls of one namespace from delaying another's.
//
// Every namespace shares the controller's workers, and a token call holds its worker until
// the bank answers or --token-request-timeout passes: twenty resources pointed at an
// endpoint that accepts connections and never answers would hold every worker, and another
// namespace's due renewal would wait behind them.
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
// One that may not take a slot is put back, having read nothing but the cached resource and
// taking its worker for microseconds. It waits for a slot, not a timer.
//
// Two rules say who may take a slot, with W workers, a cap of C per namespace
// (--token-calls-per-namespace, a quarter of W) and a reserve of R (--token-call-reserve,
// half of W):
//   - a namespace never has more than C slots;
//   - a namespace that has a slot (a call under way, or one held for a woken resource) takes
//     another only while fewer than W-R are taken or held across all namespaces. One with
//     none is never refused.
//
// A cap alone did not hold against many namespaces: with W=16 and C=4, four namespaces whose
// endpoints hang held every worker, and another tenant's first token took 37.9 s. With the
// reserve (R < W; a larger one acts as W-1), the invariant is: slots taken or held <=
// W-R-1+A, A the namespaces that have one. A namespace's first slot adds one to both sides;
// any other is taken only while fewer than W-R are, when A >= 1. The slots beyond each
// namespace's first are so bounded in all, hence in any set of namespaces.
//
// The guarantee: h namespaces whose every endpoint hangs hold at most min(h*C, W-R-1+h)
// workers, fewer than W while h <= R (or h*C < W); and a namespace with no call under way,
// a new tenant or any tenant between its renewals, is never refused a slot, so it finds a
// worker they do not hold and its call starts at once, not after a hung call ends. With
// the defaults, W=32, C=8, R=16, sixteen hanging namespaces hold at most 31 workers. Beyond R
// hanging namespaces every worker can be in a call, and no rule on slots can prevent it: a
// namespace's first call cannot be told from a hung one until it hangs. A namespace with
// none under way is still never refused a slot there, but each of its reconciles waits for
// a worker, which hung calls give back only at their timeout. The price of the reserve: the
// calls beyond each namespace's first share W-R workers, and one namespace alone has at
// most min(C, W-R).
//
// When a slot frees, one waiter is woken for it and the slot is held for it until its
// reconcile has run: it takes the slot, or, not reaching that far, passes it on (settle).
// The waiter is the first of its namespace, and the namespace is, among those whose waiters
// the rules now admit, the one with the fewest slots, turns breaking ties: a slot freed in
// one namespace may go to another's waiter, and a namespace whose last call ends gets a
// slot back for its waiters at once, so a namespace with waiters always has one. Waking one
// per free slot, rather than every waiter, matters for a backlog: 5,000 resources waiting
// in one namespace woken at every call's end cost 92 reconciles per token (make bench,
// backlog). The caller's requeue of a refused reconcile is only a fallback for a wake-up
// lost.
package tokencalls

import (
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// DefaultPerNamespace is the share of the workers one namespace's token calls may take when
// the operator is not told: a quarter, at least one. One namespace whose every endpoint
// hangs then leaves three quarters of the workers to the others.
func DefaultPerNamespace(workers int) int {
	return max(1, workers/4)
}

// DefaultReserve is how many workers only a namespace's first call may take when the
// operator is not told: half, so that as many namespaces as that can hang and still
// leave a worker free of calls. Below 8 workers the default cap is one call per namespace,
// and the reserve changes nothing.
func DefaultReserve(workers int) int {
	return workers / 2
}

// sharedTokenCalls is how many slots may be taken or held in all before only a namespace's
// first may be: the workers less the reserve, at least one (a reserve of every worker leaves
// each namespace one call); 0, no such bound, without a reserve.
func sharedTokenCalls(workers, reserve int) int {
	if reserve <= 0 {
		return 0
	}
	return max(1, workers-reserve)
}

// Slots counts the token-call slots taken per namespace, against a cap per namespace and a
// shared bound, and keeps the resources waiting for a slot in the order they came. The zero
// value has no cap and wakes no one.
type Slots struct {
	mu sync.Mutex
	// limit is the most slots one namespace may have; 0: no limit, and no shared bound.
	limit int
	// shared is the slots taken or held in all at which only a namespace with none may take
	// one; 0: no such bound (see sharedTokenCalls).
	shared   int
	underway map[string]int
	// inUse counts the slots taken or held across all namespaces.
	inUse   int
	waiting map[string]*waitingQueue
	// turns are the namespaces with waiters, each once, in the order their turn comes.
	turns []string
	// woken are the resources a free slot is held for until their reconcile has run;
	// heldFor counts them per namespace.
	woken   map[types.NamespacedName]struct{}
	heldFor map[string]int
	// wake queues a woken resource; nil: no one listens.
	wake chan<- event.GenericEvent
}

// New is the slots of workers shared by namespaces, each capped at perNamespace (0: no cap
// and no reserve), with reserve of the workers only for a namespace with no slot (0: none).
// A woken resource is sent to wake, if there is room; the caller watches it as a source.
func New(workers, perNamespace, reserve int, wake chan<- event.GenericEvent) *Slots {
	return &Slots{limit: perNamespace, shared: sharedTokenCalls(workers, reserve), wake: wake}
}

// waitingQueue is one namespace's resources waiting for a slot, first come first.
type waitingQueue struct {
	names []string
	in    map[string]struct{}
}

// tryAcquire takes a slot for key's namespace (the one held for key, if it was woken), or
// has key wait for one.
func (c *Slots) tryAcquire(key types.NamespacedName) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, held := c.woken[key]; held {
		c.lockedUnhold(key)
	} else if c.limit > 0 && !c.lockedMayTake(key.Namespace) {
		c.lockedWait(key)
		return false
	}
	if c.underway == nil {
		c.underway = map[string]int{}
	}
	c.underway[key.Namespace]++
	c.inUse++
	return true
}

// lockedSlots is how many slots namespace has, taken or held.
func (c *Slots) lockedSlots(namespace string) int {
	return c.underway[namespace] + c.heldFor[namespace]
}

// lockedMayTake says whether namespace may take one more slot: under its cap, and its first
// or within the shared bound.
func (c *Slots) lockedMayTake(namespace string) bool {
	n := c.lockedSlots(namespace)
	return n < c.limit && (n == 0 || c.shared <= 0 || c.inUse < c.shared)
}

func (c *Slots) lockedWait(key types.NamespacedName) {
	if c.waiting == nil {
		c.waiting = map[string]*waitingQueue{}
	}
	q := c.waiting[key.Namespace]
	if q == nil {
		q = &waitingQueue{in: map[string]struct{}{}}
		c.waiting[key.Namespace] = q
		c.turns = append(c.turns, key.Namespace)
	}
	if _, in := q.in[key.Name]; !in {
		q.in[key.Name] = struct{}{}
		q.names = append(q.names, key.Name)
	}
}

// release frees a slot of namespace and wakes a waiter the rules now admit, in any namespace.
func (c *Slots) release(namespace string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.underway[namespace]--; c.underway[namespace] <= 0 {
		delete(c.underway, namespace)
	}
	c.inUse--
	c.lockedWakeForFreeSlots()
}

// Settle ends key's reconcile: a slot held for key and not taken goes to the next waiter.
// Every reconcile settles its key at its end, whether it took a slot or not.
func (c *Slots) Settle(key types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, held := c.woken[key]; held {
		c.lockedUnhold(key)
		c.lockedWakeForFreeSlots()
	}
}

func (c *Slots) lockedUnhold(key types.NamespacedName) {
	if _, held := c.woken[key]; !held {
		return
	}
	delete(c.woken, key)
	if c.heldFor[key.Namespace]--; c.heldFor[key.Namespace] <= 0 {
		delete(c.heldFor, key.Namespace)
	}
	c.inUse--
}

// lockedWakeForFreeSlots wakes waiters, one per slot the rules give, until they give none.
func (c *Slots) lockedWakeForFreeSlots() {
	for turn := c.lockedNextTurn(); turn >= 0; turn = c.lockedNextTurn() {
		c.lockedWakeFirst(turn)
	}
}

// lockedNextTurn is the index in turns of the namespace whose first waiter is woken next:
// of those that may take a slot, the one with the fewest, the earliest turn among equals;
// -1: none may.
func (c *Slots) lockedNextTurn() int {
	next, fewest := -1, 0
	for turn, namespace := range c.turns {
		if n := c.lockedSlots(namespace); c.lockedMayTake(namespace) && (next < 0 || n < fewest) {
			next, fewest = turn, n
		}
	}
	return next
}

// lockedWakeFirst holds a slot for the first waiter of the namespace at turn and wakes it;
// the namespace's next waiter, if any, takes its turn after the other namespaces'.
func (c *Slots) lockedWakeFirst(turn int) {
	namespace := c.turns[turn]
	c.turns = slices.Delete(c.turns, turn, turn+1)
	q := c.waiting[namespace]
	name := q.names[0]
	q.names = q.names[1:]
	delete(q.in, name)
	if len(q.names) == 0 {
		delete(c.waiting, namespace)
	} else {
		c.turns = append(c.turns, namespace)
	}
	key := types.NamespacedName{Namespace: namespace, Name: name}
	if c.woken == nil {
		c.woken, c.heldFor = map[types.NamespacedName]struct{}{}, map[string]int{}
	}
	c.woken[key] = struct{}{}
	c.heldFor[namespace]++
	c.inUse++
	select {
	case c.wake <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}}:
	default: // full (or no listener): the caller's requeue brings it back to its held slot
	}
}

// Slot is one of a namespace's token-call slots, taken by one reconcile.
type Slot struct {
	calls     *Slots
	namespace string
	released  bool
}

// Take takes a slot for key's namespace, or has key wait for one (false): key is then sent
// to wake once a slot is held for it.
func (c *Slots) Take(key types.NamespacedName) (*Slot, bool) {
	if !c.tryAcquire(key) {
		return nil, false
	}
	return &Slot{calls: c, namespace: key.Namespace}, true
}

// Release gives the slot back; again, it does nothing.
func (s *Slot) Release() {
	if s.released {
		return
	}
	s.released = true
	s.calls.release(s.namespace)
}

// Taken is how many slots namespace has taken: its calls under way.
func (c *Slots) Taken(namespace string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.underway[namespace]
}
