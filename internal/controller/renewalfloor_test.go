package controller

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// The renewal floor (--min-renewal-interval): a bank answering expires_in: 1 must not have
// its token renewed, and the apiserver written, every second.

func TestReconcileRenewsATokenShorterThanTheFloorOnlyOncePerFloor(t *testing.T) {
	f := newFixture(t)
	f.r.MinRenewalInterval = 30 * time.Second
	f.bank.lifetime = time.Second
	result := f.reconcile()
	f.expectCalls(1)
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued,
		"the bank's tokens live 1s, less than the operator's minimum renewal interval (30s)")
	if renewal := f.resource().Status.RenewalTime.Time; !renewal.Equal(fixtureStart.Add(30*time.Second)) || result.RequeueAfter != 30*time.Second {
		t.Fatalf("renewal at %s, requeue after %s; want both at the floor, 30s after issue", renewal, result.RequeueAfter)
	}

	// Expired, but within the floor: no call, and Ready says why the token is not renewed.
	f.clock.Step(2 * time.Second)
	result = f.reconcile()
	f.expectCalls(1)
	f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonLifetimeBelowMinRenewalInterval,
		"is expired from", "until its renewal at")
	if result.RequeueAfter != 28*time.Second {
		t.Fatalf("requeue after %s, want the 28s left until the floor", result.RequeueAfter)
	}

	// Reconciled every second for five minutes (as a resync storm would), ten more calls.
	for range 300 {
		f.clock.Step(time.Second)
		f.reconcile()
	}
	f.expectCalls(1 + 10)
}

func TestReconcileFloorHoldsBackARenewalPointBeforeIt(t *testing.T) {
	f := newFixture(t)
	f.r.MinRenewalInterval = 30 * time.Second
	// Renewed at two thirds of 40s (less jitter) without the floor; at 30s with it.
	f.bank.lifetime = 40 * time.Second
	f.issue()
	if renewal := f.resource().Status.RenewalTime.Time; !renewal.Equal(fixtureStart.Add(30 * time.Second)) {
		t.Fatalf("renewal at %s, want the floor, 30s after issue", renewal)
	}
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued, "renewal at")
	if msg := readyMessage(f); strings.Contains(msg, "minimum renewal interval") {
		t.Fatalf("a token that outlives the floor is never expired in between; Ready says %q", msg)
	}
	f.clock.Step(29 * time.Second)
	f.reconcile()
	f.expectCalls(1)
	f.clock.Step(time.Second)
	f.reconcile()
	f.expectCalls(2)
}

// The floor bounds the renewals the operator schedules; a change the user makes (new
// inputs, a refresh asked for) is acted on at once.
func TestReconcileFloorDoesNotDelayANewTokenForChangedInputs(t *testing.T) {
	f := newFixture(t)
	f.r.MinRenewalInterval = 30 * time.Second
	f.bank.lifetime = time.Second
	f.issue()
	f.clock.Step(2 * time.Second)
	f.update(func(btr *tokensv1alpha1.BankTokenRequest) { btr.Spec.Scope = "read write" })
	f.reconcile()
	f.expectCalls(2)
}

func readyMessage(f *fixture) string {
	return meta.FindStatusCondition(f.resource().Status.Conditions, tokensv1alpha1.ConditionReady).Message
}
