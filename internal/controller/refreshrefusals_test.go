package controller

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// callsPerRenewal renews n times and returns the bank calls each renewal made.
func (f *fixture) callsPerRenewal(n int) []int {
	f.t.Helper()
	var calls []int
	for range n {
		before := len(f.bank.calls)
		f.stepToRenewal()
		f.reconcile()
		calls = append(calls, len(f.bank.calls)-before)
	}
	return calls
}

// A bank that issues refresh tokens and refuses every refresh would cost two calls per
// renewal, one of them a refusal, forever: after two refusals in a row the operator renews
// with the primary grant, says so, and tries refresh tokens again when the inputs change.
func TestReconcileRenewsWithThePrimaryGrantOnceTheBankRefusesItsRefreshTokens(t *testing.T) {
	f := newFixture(t)
	f.bank.refuseRefresh = true
	f.issue()
	if got, want := f.callsPerRenewal(5), []int{2, 2, 1, 1, 1}; !slices.Equal(got, want) {
		t.Fatalf("bank calls per renewal = %v, want %v: one call per renewal from the third on", got, want)
	}
	if f.bank.lastGrant() != providers.GrantPassword {
		t.Fatal("the renewal did not use the primary grant")
	}
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued, "renewing with the primary grant")

	f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Scope = "read write" })
	f.reconcile()
	if got := f.callsPerRenewal(1); got[0] != 2 {
		t.Fatalf("after the inputs changed a renewal made %d calls; want the refresh tried again (2)", got[0])
	}
}

// A refresh the bank answers ends a run of refusals: one refusal does not make the next
// renewal skip the refresh token.
func TestReconcileForgetsARefusalOnceARefreshIsAnswered(t *testing.T) {
	f := newFixture(t)
	f.bank.refuseRefresh = true
	f.issue()
	f.callsPerRenewal(1)
	f.bank.refuseRefresh = false
	f.callsPerRenewal(1)
	f.bank.refuseRefresh = true
	if got, want := f.callsPerRenewal(2), []int{2, 2}; !slices.Equal(got, want) {
		t.Fatalf("bank calls per renewal = %v, want %v: the answered refresh should have reset the count", got, want)
	}
}
