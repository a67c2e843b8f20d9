package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// issuedRequest is a resource whose status says its token is good until renewal.
func issuedRequest(name string, now time.Time, renewal time.Duration) *tokensv1alpha1.BankTokenRequest {
	btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: name, Generation: 1}}
	btr.Status = tokensv1alpha1.BankTokenRequestStatus{
		ObservedGeneration: 1,
		RenewalTime:        &metav1.Time{Time: now.Add(renewal)},
		ExpiresAt:          &metav1.Time{Time: now.Add(renewal + time.Hour)},
		Conditions: []metav1.Condition{{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: tokensv1alpha1.ReasonTokenIssued, ObservedGeneration: 1}},
	}
	return btr
}

// TestDueFirstAfterStart lists resources as the informer does after a start, the due ones
// last, into controller-runtime's priority queue: the due ones come out first.
func TestDueFirstAfterStart(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	queue := priorityqueue.New[reconcile.Request]("test")
	defer queue.ShutDown()
	h := dueFirst(clocktesting.NewFakeClock(now))

	var listed []*tokensv1alpha1.BankTokenRequest
	for i := range 200 {
		listed = append(listed, issuedRequest(fmt.Sprintf("idle-%03d", i), now, 2*time.Hour))
	}
	due := issuedRequest("due", now, -5*time.Second)
	near := issuedRequest("near", now, 20*time.Second)
	failing := issuedRequest("failing", now, 2*time.Hour)
	failing.Status.FailedAttempts = 1
	never := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "never-issued"}}
	listed = append(listed, due, near, failing, never)
	for _, btr := range listed {
		h.Create(context.Background(), event.CreateEvent{Object: btr, IsInInitialList: true}, queue)
	}
	// A change made after the start is normal priority too, behind those listed first.
	h.Create(context.Background(), event.CreateEvent{Object: issuedRequest("created-later", now, 2*time.Hour)}, queue)

	// The queue takes adds through a buffer: wait until all are in before taking any.
	for deadline := time.Now().Add(5 * time.Second); queue.Len() < len(listed)+1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d items in the queue", queue.Len(), len(listed)+1)
		}
	}
	want := []string{"due", "near", "failing", "never-issued", "created-later"}
	for i, name := range want {
		got, priority, _ := getWithin(t, queue)
		if got.Name != name {
			t.Fatalf("item %d out of the queue: %s (priority %d), want %s", i, got.Name, priority, name)
		}
	}
	if got, priority, _ := getWithin(t, queue); priority >= 0 {
		t.Fatalf("after the due ones: %s at priority %d, want the low-priority rest", got.Name, priority)
	}
}

func getWithin(t *testing.T, queue priorityqueue.PriorityQueue[reconcile.Request]) (reconcile.Request, int, bool) {
	t.Helper()
	type item struct {
		req      reconcile.Request
		priority int
		shutdown bool
	}
	got := make(chan item, 1)
	go func() {
		req, priority, shutdown := queue.GetWithPriority()
		got <- item{req, priority, shutdown}
	}()
	select {
	case it := <-got:
		queue.Done(it.req)
		return it.req, it.priority, it.shutdown
	case <-time.After(5 * time.Second):
		t.Fatal("nothing came out of the queue")
		return reconcile.Request{}, 0, true
	}
}
