package controller

import (
	"fmt"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// woken drains the wake-ups sent so far, as names.
func woken(calls *namespaceTokenCalls) []string {
	var names []string
	for len(calls.wake) > 0 {
		e := <-calls.wake
		names = append(names, e.Object.GetNamespace()+"/"+e.Object.GetName())
	}
	return names
}

func TestNamespaceTokenCallsCapOneNamespaceAndHandTheFreedSlotToTheFirstWaiter(t *testing.T) {
	calls := &namespaceTokenCalls{limit: 2, wake: make(chan event.GenericEvent, 10)}
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
	calls.settle(a("three"))
	if got := woken(calls); len(got) != 0 {
		t.Fatalf("a reconcile that took its slot passed it on too: woke %v", got)
	}

	calls.release("a")
	if got := woken(calls); !slices.Equal(got, []string{"a/four"}) {
		t.Fatalf("woke %v, want a/four", got)
	}
	// four needs no call after all: its reconcile ends, and the slot goes to five.
	calls.settle(a("four"))
	if got := woken(calls); !slices.Equal(got, []string{"a/five"}) {
		t.Fatalf("a slot not taken was passed on to %v, want a/five", got)
	}
	calls.settle(a("five"))
	calls.release("a")
	calls.release("b")
	if len(calls.underway) != 0 || len(calls.heldFor) != 0 || len(calls.waiting) != 0 {
		t.Fatalf("left behind: underway %v, held %v, waiting %v", calls.underway, calls.heldFor, calls.waiting)
	}
}

func TestNamespaceTokenCallsWakeAsManyAsSlotsFree(t *testing.T) {
	calls := &namespaceTokenCalls{limit: 3, wake: make(chan event.GenericEvent, 100)}
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
	var calls namespaceTokenCalls
	for range 100 {
		if !calls.tryAcquire(types.NamespacedName{Namespace: "a", Name: "x"}) {
			t.Fatal("refused a slot without a limit")
		}
	}
}
