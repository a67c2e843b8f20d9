package controller

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func TestNamespaceTokenCallsCapOneNamespaceAndWakeItsWaitersWhenACallEnds(t *testing.T) {
	calls := namespaceTokenCalls{limit: 2, wake: make(chan event.GenericEvent, 10)}
	a := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: "a", Name: name} }
	if !calls.tryAcquire(a("one")) || !calls.tryAcquire(a("two")) {
		t.Fatal("a namespace under its cap was refused a slot")
	}
	if calls.tryAcquire(a("three")) || !calls.full(a("four")) {
		t.Fatal("a namespace at its cap got a third slot")
	}
	if !calls.tryAcquire(types.NamespacedName{Namespace: "b", Name: "one"}) {
		t.Fatal("another namespace was held back by a's calls")
	}
	if len(calls.wake) != 0 {
		t.Fatal("a waiter was woken before any call ended")
	}
	calls.release("a")
	woken := map[string]bool{}
	for len(calls.wake) > 0 {
		e := <-calls.wake
		if e.Object.GetNamespace() != "a" {
			t.Fatalf("woke %s/%s", e.Object.GetNamespace(), e.Object.GetName())
		}
		woken[e.Object.GetName()] = true
	}
	if len(woken) != 2 || !woken["three"] || !woken["four"] {
		t.Fatalf("woke %v, want three and four", woken)
	}
	if !calls.tryAcquire(a("three")) || calls.tryAcquire(a("four")) {
		t.Fatal("the freed slot was not the only one given")
	}
	calls.release("a")
	calls.release("a")
	calls.release("b")
	if len(calls.underway) != 0 {
		t.Fatalf("slots left taken: %v", calls.underway)
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
