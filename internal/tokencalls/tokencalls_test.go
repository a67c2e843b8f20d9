package tokencalls

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// watched is slots with the receiving end of their wake-ups, as the controller's source has.
type watched struct {
	*Slots
	wake chan event.GenericEvent
}

func watch(calls *Slots, room int) *watched {
	wake := make(chan event.GenericEvent, room)
	calls.wake = wake
	return &watched{Slots: calls, wake: wake}
}

// woken drains the wake-ups sent so far, as names.
func woken(calls *watched) []string {
	var names []string
	for len(calls.wake) > 0 {
		e := <-calls.wake
		names = append(names, e.Object.GetNamespace()+"/"+e.Object.GetName())
	}
	return names
}

func TestNamespaceTokenCallsCapOneNamespaceAndHandTheFreedSlotToTheFirstWaiter(t *testing.T) {
	calls := watch(&Slots{limit: 2}, 10)
	a := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: "a", Name: name} }
	if !calls.tryAcquire(a("one")) || !calls.tryAcquire(a("two")) {
		t.Fatal("a namespace under its cap was refused a slot")
	}
	if calls.tryAcquire(a("three")) || calls.tryAcquire(a("four")) || calls.tryAcquire(a("three")) {
		t.Fatal("a namespace at its cap got a third slot")
	}
	if !calls.tryAcquire(types.NamespacedName{Namespace: "b", Name: "one"}) {
		t.Fatal("another namespace was held back by a's calls")
	}
	if got := woken(calls); len(got) != 0 {
		t.Fatalf("woke %v before any call ended", got)
	}

	calls.release("a")
	if got := woken(calls); !slices.Equal(got, []string{"a/three"}) {
		t.Fatalf("one call ended: woke %v, want only the first waiter, a/three", got)
	}
	if calls.tryAcquire(a("five")) {
		t.Fatal("a newcomer took the slot held for the woken waiter")
	}
	if !calls.tryAcquire(a("three")) {
		t.Fatal("the woken waiter was refused the slot held for it")
	}
	calls.Settle(a("three"))
	if got := woken(calls); len(got) != 0 {
		t.Fatalf("a reconcile that took its slot passed it on too: woke %v", got)
	}

	calls.release("a")
	if got := woken(calls); !slices.Equal(got, []string{"a/four"}) {
		t.Fatalf("woke %v, want a/four", got)
	}
	// four needs no call after all: its reconcile ends, and the slot goes to five.
	calls.Settle(a("four"))
	if got := woken(calls); !slices.Equal(got, []string{"a/five"}) {
		t.Fatalf("a slot not taken was passed on to %v, want a/five", got)
	}
	calls.Settle(a("five"))
	calls.release("a")
	calls.release("b")
	if len(calls.underway) != 0 || len(calls.heldFor) != 0 || len(calls.waiting) != 0 {
		t.Fatalf("left behind: underway %v, held %v, waiting %v", calls.underway, calls.heldFor, calls.waiting)
	}
}

func TestNamespaceTokenCallsWakeAsManyAsSlotsFree(t *testing.T) {
	calls := watch(&Slots{limit: 3}, 100)
	key := func(i int) types.NamespacedName { return types.NamespacedName{Namespace: "a", Name: fmt.Sprint(i)} }
	for i := range 3 {
		calls.tryAcquire(key(i))
	}
	for i := 3; i < 50; i++ {
		calls.tryAcquire(key(i))
	}
	for range 3 {
		calls.release("a")
	}
	if got := woken(calls); !slices.Equal(got, []string{"a/3", "a/4", "a/5"}) {
		t.Fatalf("three slots freed: woke %v, want the first three waiters", got)
	}
}

func TestNoTokenCallCapWhenTheLimitIsZero(t *testing.T) {
	var calls Slots
	for range 100 {
		if !calls.tryAcquire(types.NamespacedName{Namespace: "a", Name: "x"}) {
			t.Fatal("refused a slot without a limit")
		}
	}
}

// ns is a resource's key in namespace.
func ns(namespace, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: namespace, Name: name}
}

// reserved is the slot bookkeeping of W workers with a cap of C per namespace and a reserve
// of R, as the controller builds it.
func reserved(workers, perNamespace, reserve int) *watched {
	return watch(New(workers, perNamespace, reserve, nil), 10_000)
}

// checkSlots fails t unless the bookkeeping is consistent and the invariant of the package comment
// holds: slots per namespace within the cap, slots in all within shared-1 plus the
// namespaces that have one, and no namespace with waiters that the rules would admit (a
// wake-up not sent).
func checkSlots(t *testing.T, calls *watched) {
	t.Helper()
	calls.mu.Lock()
	defer calls.mu.Unlock()
	inUse, namespaces := 0, map[string]int{}
	for namespace, n := range calls.underway {
		namespaces[namespace] += n
	}
	for namespace, n := range calls.heldFor {
		namespaces[namespace] += n
	}
	held := map[string]int{}
	for key := range calls.woken {
		held[key.Namespace]++
	}
	if !maps.Equal(held, calls.heldFor) {
		t.Fatalf("held for %v, but woken %v", calls.heldFor, calls.woken)
	}
	for namespace, n := range namespaces {
		inUse += n
		if n > calls.limit {
			t.Fatalf("namespace %s has %d slots, over its cap of %d", namespace, n, calls.limit)
		}
	}
	if inUse != calls.inUse {
		t.Fatalf("inUse %d, but %d slots taken or held", calls.inUse, inUse)
	}
	if calls.shared > 0 && inUse > calls.shared-1+len(namespaces) {
		t.Fatalf("%d slots in %d namespaces, over %d-1 shared plus one each", inUse, len(namespaces), calls.shared)
	}
	if len(calls.turns) != len(calls.waiting) {
		t.Fatalf("turns %v for the waiting namespaces %v", calls.turns, slices.Collect(maps.Keys(calls.waiting)))
	}
	for _, namespace := range calls.turns {
		if calls.waiting[namespace] == nil || calls.lockedMayTake(namespace) {
			t.Fatalf("namespace %s has its turn, waiters %v, and may take a slot: a wake-up was not sent", namespace, calls.waiting[namespace])
		}
	}
}

// Eight namespaces whose every resource hangs, however their reconciles interleave, hold
// at most W-R-1+8 = 15 of 16 workers; a ninth namespace's first call is never refused.
func TestManyNamespacesAtTheirCapLeaveAWorkerForANamespaceWithNoCall(t *testing.T) {
	const workers, perNamespace, reserve, hanging = 16, 4, 8, 8
	for seed := range uint64(200) {
		calls := reserved(workers, perNamespace, reserve)
		var keys []types.NamespacedName
		for i := range hanging {
			for j := range 6 {
				keys = append(keys, ns(fmt.Sprint("hung-", i), fmt.Sprint(j)))
			}
		}
		rand.New(rand.NewPCG(seed, 0)).Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		for _, key := range keys {
			calls.tryAcquire(key)
		}
		checkSlots(t, calls)
		if calls.inUse > workers-reserve-1+hanging {
			t.Fatalf("order %d: %d namespaces that hang hold %d slots, want at most %d", seed, hanging, calls.inUse, workers-reserve-1+hanging)
		}
		if !calls.tryAcquire(ns("fresh", "first")) {
			t.Fatalf("order %d: a namespace with no call under way was refused its first, %d slots taken", seed, calls.inUse)
		}
		if calls.tryAcquire(ns("fresh", "second")) {
			t.Fatalf("order %d: a namespace with a call under way took a second from the reserve", seed)
		}
	}
}

// One namespace may still use its whole cap when others leave the shared slots free.
func TestOneNamespaceAloneUsesItsWholeCap(t *testing.T) {
	calls := reserved(16, 4, 8)
	for i := range 4 {
		if !calls.tryAcquire(ns("a", fmt.Sprint(i))) {
			t.Fatalf("call %d of a namespace alone was refused, under its cap of 4 and the 8 shared", i+1)
		}
	}
	if calls.tryAcquire(ns("a", "4")) {
		t.Fatal("a fifth call over the cap of 4")
	}
}

// Without a reserve only the cap applies, as before it: four namespaces take every worker.
func TestNoReserveLeavesOnlyTheCap(t *testing.T) {
	calls := reserved(16, 4, 0)
	for i := range 4 {
		for j := range 4 {
			if !calls.tryAcquire(ns(fmt.Sprint(i), fmt.Sprint(j))) {
				t.Fatalf("refused %d/%d with no reserve", i, j)
			}
		}
	}
	checkSlots(t, calls)
}

// A slot freed in one namespace goes to the waiter of another that may use it, and is held
// for that waiter until it comes.
func TestAFreedSharedSlotWakesAWaiterInAnotherNamespace(t *testing.T) {
	calls := reserved(5, 3, 3) // a namespace's second call only while fewer than 2 in all
	for _, key := range []types.NamespacedName{ns("a", "1"), ns("a", "2"), ns("b", "1"), ns("c", "1")} {
		if !calls.tryAcquire(key) {
			t.Fatalf("%s refused", key)
		}
	}
	if calls.tryAcquire(ns("b", "2")) {
		t.Fatal("b took a second call with 4 under way and 2 shared")
	}
	calls.release("a")
	calls.release("a")
	if got := woken(calls); len(got) != 0 {
		t.Fatalf("woke %v with 2 still under way", got)
	}
	calls.release("c")
	if got := woken(calls); !slices.Equal(got, []string{"b/2"}) {
		t.Fatalf("c's call ended below the shared bound: woke %v, want b/2", got)
	}
	if calls.tryAcquire(ns("b", "3")) {
		t.Fatal("a newcomer took the shared slot held for b/2")
	}
	if !calls.tryAcquire(ns("b", "2")) {
		t.Fatal("b/2 was refused the slot held for it")
	}
	checkSlots(t, calls)
}

// Of the namespaces whose waiters may take a freed slot, the one with the fewest goes first,
// and namespaces with as many take turns.
func TestAFreedSlotGoesToTheWaitingNamespaceWithTheFewestThenInTurn(t *testing.T) {
	calls := reserved(7, 3, 2) // a namespace's further calls only while fewer than 5 in all
	for _, key := range []types.NamespacedName{ns("a", "1"), ns("a", "2"), ns("a", "3"), ns("b", "1"), ns("c", "1")} {
		calls.tryAcquire(key)
	}
	calls.tryAcquire(ns("a", "4")) // at its cap
	calls.tryAcquire(ns("b", "2")) // at the shared bound
	calls.tryAcquire(ns("b", "3"))
	calls.release("a")
	if got := woken(calls); !slices.Equal(got, []string{"b/2"}) {
		t.Fatalf("a freed a slot: woke %v, want b/2 (b has 1 slot, a 2)", got)
	}
	calls.tryAcquire(ns("b", "2"))
	calls.release("c")
	if got := woken(calls); !slices.Equal(got, []string{"a/4"}) {
		t.Fatalf("c freed a slot with a and b at 2 each: woke %v, want a/4, whose turn came first", got)
	}
	calls.Settle(ns("a", "4")) // needed no call after all: the slot goes on, to b's turn
	if got := woken(calls); !slices.Equal(got, []string{"b/3"}) {
		t.Fatalf("a/4 passed its slot on: woke %v, want b/3", got)
	}
	checkSlots(t, calls)
}

// A namespace whose last call ends gets a slot for its first waiter at once, even with the
// shared slots taken: a namespace with waiters always has one.
func TestANamespaceWhoseLastCallEndsWakesAWaiterPastTheSharedBound(t *testing.T) {
	calls := reserved(4, 2, 2) // further calls only while fewer than 2 in all
	calls.tryAcquire(ns("a", "1"))
	calls.tryAcquire(ns("b", "1"))
	calls.tryAcquire(ns("a", "2"))
	calls.tryAcquire(ns("c", "1"))
	calls.release("a")
	if got := woken(calls); !slices.Equal(got, []string{"a/2"}) {
		t.Fatalf("a's only call ended with 2 others under way: woke %v, want a/2", got)
	}
	checkSlots(t, calls)
}

// Reconciles that interleave at random (a call taken, ended, a wake-up come, a woken
// resource needing no call) keep the bookkeeping and the invariant, lose no wake-up, and
// leave nothing behind once every call has ended.
func TestSlotBookkeepingHoldsThroughRandomReconciles(t *testing.T) {
	for seed := range uint64(50) {
		calls, rnd := reserved(8, 3, 4), rand.New(rand.NewPCG(seed, 1))
		sim := &reconciles{calls: calls, running: map[types.NamespacedName]bool{}}
		for range 2_000 {
			switch rnd.IntN(3) {
			case 0:
				sim.reconcile(ns(fmt.Sprint("ns-", rnd.IntN(6)), fmt.Sprint(rnd.IntN(10))), rnd.IntN(2) == 0)
			case 1:
				sim.endOne(rnd)
			case 2:
				sim.deliverWakeups(rnd)
			}
			checkSlots(t, calls)
		}
		for len(sim.running) > 0 || len(calls.wake) > 0 || len(sim.pending) > 0 {
			sim.endOne(rnd)
			sim.deliverWakeups(rnd)
			checkSlots(t, calls)
		}
		if calls.inUse != 0 || len(calls.underway)+len(calls.heldFor)+len(calls.woken)+len(calls.waiting)+len(calls.turns) != 0 {
			t.Fatalf("seed %d left behind: %d in use, underway %v, held %v, waiting %v, turns %v",
				seed, calls.inUse, calls.underway, calls.heldFor, calls.waiting, calls.turns)
		}
	}
}

// reconciles plays the controller: a key runs in one reconcile at a time, a wake-up for a
// key that runs comes after, and Reconcile settles its key at its end.
type reconciles struct {
	calls   *watched
	running map[types.NamespacedName]bool
	pending []types.NamespacedName
}

func (s *reconciles) reconcile(key types.NamespacedName, callsBank bool) {
	if s.running[key] {
		return
	}
	if s.calls.tryAcquire(key) {
		if callsBank {
			s.running[key] = true
			return
		}
		s.calls.release(key.Namespace)
	}
	s.calls.Settle(key)
}

// endOne ends one call under way, at random.
func (s *reconciles) endOne(rnd *rand.Rand) {
	keys := slices.SortedFunc(maps.Keys(s.running), func(a, b types.NamespacedName) int { return cmp.Compare(a.String(), b.String()) })
	if len(keys) == 0 {
		return
	}
	key := keys[rnd.IntN(len(keys))]
	delete(s.running, key)
	s.calls.release(key.Namespace)
	s.calls.Settle(key)
}

// deliverWakeups runs the woken resources whose reconcile is not running, each needing a
// call or not, at random.
func (s *reconciles) deliverWakeups(rnd *rand.Rand) {
	for len(s.calls.wake) > 0 {
		e := <-s.calls.wake
		s.pending = append(s.pending, ns(e.Object.GetNamespace(), e.Object.GetName()))
	}
	var later []types.NamespacedName
	for _, key := range s.pending {
		if s.running[key] {
			later = append(later, key)
			continue
		}
		s.reconcile(key, rnd.IntN(2) == 0)
	}
	s.pending = later
}
