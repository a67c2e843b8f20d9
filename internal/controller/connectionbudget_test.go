package controller

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/callbudget"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// The reconciles below run the fixture's request through a BankConnection whose call
// budget is given, on budgets without spacing so that each verdict follows from the window
// alone.

var fixtureBudgetKey = callbudget.Key{Kind: tokensv1alpha1.KindBankConnection, Namespace: "payments", Name: fixtureConnection}

func newBudgetFixture(t *testing.T, calls int32, interval time.Duration) *fixture {
	t.Helper()
	f := newConnectionFixture(t, tokensv1alpha1.KindBankConnection, func(spec *tokensv1alpha1.BankConnectionSpec) {
		spec.CallBudget = &tokensv1alpha1.CallBudget{Calls: ptr.To(calls), Interval: &metav1.Duration{Duration: interval}}
	})
	f.r.Budgets = callbudget.New(callbudget.Options{MaxSpacing: -1})
	return f
}

// setCallBudget changes the connection's budget, as a spec edit would.
func (f *fixture) setCallBudget(calls int32) {
	f.t.Helper()
	conn := &tokensv1alpha1.BankConnection{}
	must(f.t, f.client.Get(context.Background(), client.ObjectKey{Namespace: f.key.Namespace, Name: fixtureConnection}, conn))
	conn.Spec.CallBudget.Calls = ptr.To(calls)
	conn.Generation++
	must(f.t, f.client.Update(context.Background(), conn))
}

func (f *fixture) expectReconciling(reason string, want ...string) {
	f.t.Helper()
	c := meta.FindStatusCondition(f.resource().Status.Conditions, tokensv1alpha1.ConditionReconciling)
	if reason == "" {
		if c != nil {
			f.t.Fatalf("Reconciling = %+v, want none", c)
		}
		return
	}
	if c == nil || c.Reason != reason {
		f.t.Fatalf("Reconciling = %+v, want reason %s", c, reason)
	}
	for _, w := range want {
		if !strings.Contains(c.Message, w) {
			f.t.Errorf("Reconciling message %q lacks %q", c.Message, w)
		}
	}
}

// A renewal the budget refuses makes no call and keeps the token: Ready stays True, no
// failure is counted, the renewal time stays, status is written once however often the
// request comes back, and the place it held is given up once it needs no call.
func TestARenewalTheBudgetHoldsBackKeepsItsTokenAndCountsNoFailure(t *testing.T) {
	f := newBudgetFixture(t, 1, 24*time.Hour)
	f.issue()
	before := f.resource().Status
	f.stepToRenewal()
	result := f.reconcile()
	f.expectCalls(1)
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
	f.expectReconciling(tokensv1alpha1.ReasonWaitingForConnectionBudget,
		"BankConnection payments/paymob-client's call budget (1 calls per 24h0m0s)", "most urgent")
	status := f.resource().Status
	if status.FailedAttempts != 0 || status.LastFailureTime != nil || !status.RenewalTime.Equal(before.RenewalTime) {
		t.Fatalf("a wait for the budget counted as a failure: attempts %d, last failure %v, renewal %v (was %v)",
			status.FailedAttempts, status.LastFailureTime, status.RenewalTime, before.RenewalTime)
	}
	if until := status.ExpiresAt.Sub(f.clock.Now()); result.RequeueAfter <= 0 || result.RequeueAfter > until {
		t.Fatalf("requeued after %v; want by the token's expiry, %v away", result.RequeueAfter, until)
	}
	if got := f.r.Budgets.Snapshot(fixtureBudgetKey, f.clock.Now()).Waiting; got != 1 {
		t.Fatalf("%d waiters, want the request", got)
	}
	writes := len(f.writes)
	f.reconcile()
	if len(f.writes) != writes {
		t.Fatalf("waiting again wrote %v", f.writes[writes:])
	}

	f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Suspend = true })
	f.reconcile()
	if got := f.r.Budgets.Snapshot(fixtureBudgetKey, f.clock.Now()).Waiting; got != 0 {
		t.Fatalf("a suspended request still holds its place among the waiters (%d)", got)
	}
	f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Suspend = false })
	f.setCallBudget(2)
	f.reconcile()
	f.expectCalls(2)
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
	f.expectReconciling("")
}

// A turn a moment away (another request took the window's one call just before) writes no
// status: the request is back within the second, and a status patch per request per round
// is what make bench measured it costing.
func TestARenewalHeldBackForAMomentWritesNoStatus(t *testing.T) {
	f := newBudgetFixture(t, 1, 500*time.Millisecond)
	f.issue()
	f.stepToRenewal()
	limits := callbudget.Limits{Calls: 1, Interval: 500 * time.Millisecond}
	if v := f.r.Budgets.Take(fixtureBudgetKey, limits, callbudget.Claim{Requester: "payments/other"}, f.clock.Now()); !v.Granted {
		t.Fatal("the other request was refused the window's call")
	}
	writes := len(f.writes)
	result := f.reconcile()
	f.expectCalls(1)
	if len(f.writes) != writes {
		t.Fatalf("a wait of a moment wrote %v", f.writes[writes:])
	}
	if result.RequeueAfter <= 0 || result.RequeueAfter > 500*time.Millisecond {
		t.Fatalf("requeued after %v; want the turn, at most 500ms away", result.RequeueAfter)
	}
	f.clock.Step(500 * time.Millisecond)
	f.reconcile()
	f.expectCalls(2)
	f.expectReconciling("")
}

// A first token the budget holds back: Ready is Unknown (one is on its way, none failed),
// which Argo CD shows as Progressing.
func TestAFirstTokenTheBudgetHoldsBackIsUnknownNotFailed(t *testing.T) {
	f := newBudgetFixture(t, 1, time.Hour)
	limits := callbudget.Limits{Calls: 1, Interval: time.Hour}
	if v := f.r.Budgets.Take(fixtureBudgetKey, limits, callbudget.Claim{Requester: "payments/other"}, f.clock.Now()); !v.Granted {
		t.Fatal("the other request was refused the budget's only call")
	}
	f.reconcile()
	f.expectCalls(0)
	f.expectReady(metav1.ConditionUnknown, tokensv1alpha1.ReasonWaitingForConnectionBudget)
	if state := tokensv1alpha1.TokenState(&f.resource().Status); state != tokensv1alpha1.TokenStatePending {
		t.Fatalf("token state %s, want Pending", state)
	}
}

// A 429 to one request pauses the whole connection: the request that got it counts a
// failure, every other request of the connection waits for the time the bank gave, and the
// request's deletion waits with its revocation.
func TestA429ToOneRequestPausesItsConnection(t *testing.T) {
	f := newBudgetFixture(t, 60, time.Minute)
	rateLimited := &providers.Error{Class: providers.ClassRateLimited, Reason: providers.ReasonRateLimited, StatusCode: 429,
		RetryAfter: 30 * time.Second, Message: "Paymob token endpoint answered 429"}
	f.renewAnswering(rateLimited)
	f.expectCalls(2)
	if got := f.resource().Status.FailedAttempts; got != 1 {
		t.Fatalf("failed attempts %d, want the 429 counted", got)
	}
	now := f.clock.Now()
	if paused := f.r.Budgets.Snapshot(fixtureBudgetKey, now).PausedUntil; !paused.Equal(now.Add(30 * time.Second)) {
		t.Fatalf("paused until %v, want the bank's Retry-After from now", paused)
	}
	other := f.r.Budgets.Take(fixtureBudgetKey, callbudget.Limits{Calls: 60, Interval: time.Minute},
		callbudget.Claim{Requester: "payments/other"}, now)
	if other.Granted || other.Reason != callbudget.RefusedPaused || other.RetryAt.Before(now.Add(30*time.Second)) {
		t.Fatalf("another request of the connection: %+v; want it held until the pause ends", other)
	}

	revocations := len(f.bank.revocations)
	must(t, f.client.Delete(context.Background(), f.resource()))
	result := f.reconcile()
	if len(f.bank.revocations) != revocations || result.RequeueAfter != 30*time.Second {
		t.Fatalf("a revocation went out during the pause (%d), or the deletion comes back after %v, not at its end",
			len(f.bank.revocations)-revocations, result.RequeueAfter)
	}
	f.clock.Step(30 * time.Second)
	f.reconcile()
	if len(f.bank.revocations) == revocations {
		t.Fatal("the grant was not revoked once the pause ended")
	}
}

// The bank refuses the refresh token and the budget has no room for the primary grant that
// follows: the request waits, not fails; the spent refresh token is dropped, and the next
// reconcile goes to the primary grant.
func TestAPrimaryGrantAfterARefusedRefreshWaitsForTheBudget(t *testing.T) {
	f := newBudgetFixture(t, 2, 24*time.Hour)
	f.bank.refuseRefresh = true
	f.issue()
	f.stepToRenewal()
	f.reconcile()
	f.expectLastCall(2, providers.GrantRefreshToken, "the renewal did not start with the refresh token")
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
	f.expectReconciling(tokensv1alpha1.ReasonWaitingForConnectionBudget)
	if f.resource().Status.FailedAttempts != 0 || f.refreshToken() != "" {
		t.Fatal("the wait counted a failure, or kept the refused refresh token")
	}
	if !slices.Contains(f.events(), eventRefreshTokenRejected) {
		t.Error("no event says the bank refused the refresh token")
	}
	f.setCallBudget(3)
	f.reconcile()
	f.expectLastCall(3, providers.GrantPassword, "the renewal after the wait did not use the primary grant")
	f.expectReconciling("")
}

// A call that never went out gives its place in the window back.
func TestACallThatNeverWentOutIsRefunded(t *testing.T) {
	f := newBudgetFixture(t, 1, 24*time.Hour)
	f.bank.failWith(&providers.Error{Class: providers.ClassTransient, Reason: providers.ReasonEndpointUnreachable,
		NotSent: true, Message: "connection refused"})
	f.reconcile()
	f.expectCalls(1)
	f.stepToRenewal()
	f.reconcile()
	f.expectCalls(2)
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
}

// After a restart the budget starts from what status records: the last call of each
// request, and a pause the connection's status shows.
func TestARestartedReconcilerSeedsTheBudgetFromStatus(t *testing.T) {
	f := newBudgetFixture(t, 1, 24*time.Hour)
	f.issue()
	restart := func() {
		f.r = f.newReconciler()
		f.r.Budgets = callbudget.New(callbudget.Options{MaxSpacing: -1})
	}
	restart()
	f.stepToRenewal()
	f.reconcile()
	f.expectCalls(1)
	f.expectReconciling(tokensv1alpha1.ReasonWaitingForConnectionBudget)

	f.setCallBudget(60)
	conn := &tokensv1alpha1.BankConnection{}
	must(t, f.client.Get(context.Background(), client.ObjectKey{Namespace: f.key.Namespace, Name: fixtureConnection}, conn))
	pausedUntil := metav1.NewTime(f.clock.Now().Add(time.Hour))
	conn.Status.Budget = &tokensv1alpha1.CallBudgetStatus{PausedUntil: &pausedUntil}
	must(t, f.client.Status().Update(context.Background(), conn))
	restart()
	f.reconcile()
	f.expectCalls(1)
	f.expectReconciling(tokensv1alpha1.ReasonConnectionPaused, "paused until "+formatTime(pausedUntil.Time))
}

// A token call is charged from a little after it is sent, as the bank counts it when it
// arrives: the next call of a full window goes bankArrivalMargin after the interval.
func TestATokenCallIsChargedFromItsArrivalAtTheBank(t *testing.T) {
	f := newBudgetFixture(t, 1, time.Second)
	sent := f.clock.Now()
	f.issue()
	limits := callbudget.Limits{Calls: 1, Interval: time.Second}
	other := callbudget.Claim{Requester: "payments/other"}
	if v := f.r.Budgets.Take(fixtureBudgetKey, limits, other, sent.Add(time.Second)); v.Granted {
		t.Fatal("the next call went an interval after the first was sent, before it could have reached the bank an interval ago")
	}
	if v := f.r.Budgets.Take(fixtureBudgetKey, limits, other, sent.Add(time.Second+bankArrivalMargin)); !v.Granted {
		t.Fatalf("the next call was refused at the interval plus the margin: %+v", v)
	}
}
