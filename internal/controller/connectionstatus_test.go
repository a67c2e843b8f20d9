package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/callbudget"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// The connection status reconciler on the fixture's BankConnection, its request and its
// credentials Secret, with the request reconciler's budgets.

type connectionStatusFixture struct {
	*fixture
	status *ConnectionStatusReconciler
}

func newConnectionStatusFixture(t *testing.T, calls int32) *connectionStatusFixture {
	t.Helper()
	f := newBudgetFixture(t, calls, time.Minute)
	s := NewConnectionStatusReconciler(f.r)
	s.Metrics = NewConnectionMetrics()
	return &connectionStatusFixture{fixture: f, status: s}
}

// reconcileConnection runs one status reconcile of the fixture's connection.
func (f *connectionStatusFixture) reconcileConnection() ctrl.Result {
	f.t.Helper()
	result, err := f.status.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{
		Namespace: f.key.Namespace, Name: fixtureConnection}})
	if err != nil {
		f.t.Fatalf("connection status reconcile: %v", err)
	}
	return result
}

func (f *connectionStatusFixture) connectionStatus() tokensv1alpha1.BankConnectionStatus {
	f.t.Helper()
	conn := &tokensv1alpha1.BankConnection{}
	must(f.t, f.client.Get(context.Background(), client.ObjectKey{Namespace: f.key.Namespace, Name: fixtureConnection}, conn))
	return conn.Status
}

func (f *connectionStatusFixture) expectConnectionCondition(conditionType string, status metav1.ConditionStatus, reason string, want ...string) {
	f.t.Helper()
	c := meta.FindStatusCondition(f.connectionStatus().Conditions, conditionType)
	if c == nil || c.Status != status || c.Reason != reason {
		f.t.Fatalf("%s = %+v, want %s/%s", conditionType, c, status, reason)
	}
	for _, w := range want {
		if !strings.Contains(c.Message, w) {
			f.t.Errorf("%s message %q lacks %q", conditionType, c.Message, w)
		}
	}
}

// CredentialsReady says which Secret or key is missing, and turns True once it is fixed;
// Ready follows it. The connection has no request yet: its status is written all the same.
func TestConnectionStatusSaysWhatItsCredentialsLack(t *testing.T) {
	f := newConnectionStatusFixture(t, 60)
	ctx := context.Background()
	must(t, f.client.Delete(ctx, credentialsSecret("")))
	f.reconcileConnection()
	f.expectConnectionCondition(tokensv1alpha1.ConditionCredentialsReady, metav1.ConditionFalse,
		tokensv1alpha1.ReasonCredentialsSecretNotFound, "payments/paymob-credentials not found")
	f.expectConnectionCondition(tokensv1alpha1.ConditionReady, metav1.ConditionFalse, tokensv1alpha1.ReasonCredentialsSecretNotFound)

	lacking := credentialsSecret("")
	delete(lacking.Data, "password")
	must(t, f.client.Create(ctx, lacking))
	f.reconcileConnection()
	f.expectConnectionCondition(tokensv1alpha1.ConditionCredentialsReady, metav1.ConditionFalse,
		tokensv1alpha1.ReasonCredentialsKeyMissing, `no key "password"`)

	lacking.Data["password"] = []byte("fixture-password")
	must(t, f.client.Update(ctx, lacking))
	f.reconcileConnection()
	f.expectConnectionCondition(tokensv1alpha1.ConditionCredentialsReady, metav1.ConditionTrue, tokensv1alpha1.ReasonCredentialsFound)
	f.expectConnectionCondition(tokensv1alpha1.ConditionReady, metav1.ConditionTrue, tokensv1alpha1.ReasonConnectionReady)
	if got := f.connectionStatus(); got.ObservedGeneration != 1 || got.Requests != 1 || got.Budget == nil || got.Budget.Limit != 60 {
		t.Fatalf("status %+v; want generation 1 observed, the fixture's request counted and the budget's limit", got)
	}
}

// A client certificate Secret whose key is not the certificate's is not ready credentials.
func TestConnectionStatusRefusesACertificateWithoutItsKey(t *testing.T) {
	if p := certificatePairProblem(providers.TLSMaterial{ClientCertificate: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		ClientKey: "not a key"}, "bank-clients", "client-cert"); p == nil || p.Reason != providers.ReasonInvalidTLSConfig ||
		!strings.Contains(p.Message, "bank-clients/client-cert") || strings.Contains(p.Message, "not a key") {
		t.Fatalf("problem %+v; want InvalidTLSConfiguration naming the Secret, not its key", p)
	}
}

// Requests: counted, refused by the gates or not, with their namespaces, their last failed
// call and the calls in the window; a pause makes the connection not Ready until its end.
func TestConnectionStatusCountsItsRequestsTheirCallsAndTheirLastFailure(t *testing.T) {
	f := newConnectionStatusFixture(t, 60)
	f.issue()
	f.stepToRenewal()
	f.bank.failWith(&providers.Error{Class: providers.ClassRateLimited, Reason: providers.ReasonRateLimited, StatusCode: 429,
		RetryAfter: 90 * time.Second, Message: "Paymob token endpoint answered 429"})
	f.reconcile()
	refused := f.resource().DeepCopy()
	refused.ObjectMeta = metav1.ObjectMeta{Namespace: f.key.Namespace, Name: "admin-scope"}
	refused.Spec.Scope = "admin"
	refused.Status = tokensv1alpha1.BankTokenRequestStatus{}
	must(t, f.client.Create(context.Background(), refused))
	f.setAllowedScopes("read")

	result := f.reconcileConnection()
	status := f.connectionStatus()
	if status.Requests != 1 || status.RefusedRequests != 1 || len(status.Namespaces) != 1 || status.Namespaces[0] != "payments" {
		t.Fatalf("requests %d, refused %d, namespaces %v; want 1, 1, [payments]", status.Requests, status.RefusedRequests, status.Namespaces)
	}
	if status.Budget.Calls != 1 || status.Budget.PausedUntil == nil {
		t.Fatalf("budget %+v; want the rate-limited renewal counted (the issue, half an hour ago, left the window), and the pause", status.Budget)
	}
	if lf := status.LastFailure; lf == nil || lf.Request != "payments/paymob" || lf.Reason != tokensv1alpha1.ReasonRefreshFailing ||
		!strings.Contains(lf.Message, "429") {
		t.Fatalf("last failure %+v; want the request's rate-limited renewal", lf)
	}
	f.expectConnectionCondition(tokensv1alpha1.ConditionReady, metav1.ConditionFalse, tokensv1alpha1.ReasonConnectionPaused, "RateLimited")
	if until := status.Budget.PausedUntil.Sub(f.clock.Now()); result.RequeueAfter <= 0 || result.RequeueAfter > until {
		t.Fatalf("requeued after %v; want by the pause's end, %v away", result.RequeueAfter, until)
	}
	f.clock.SetTime(status.Budget.PausedUntil.Time)
	f.reconcileConnection()
	f.expectConnectionCondition(tokensv1alpha1.ConditionReady, metav1.ConditionTrue, tokensv1alpha1.ReasonConnectionReady)
	if f.connectionStatus().LastFailure == nil {
		t.Fatal("the last failure was forgotten once the pause ended")
	}
}

// setAllowedScopes gives the fixture's connection allowedScopes.
func (f *fixture) setAllowedScopes(scopes ...string) {
	f.t.Helper()
	conn := &tokensv1alpha1.BankConnection{}
	must(f.t, f.client.Get(context.Background(), client.ObjectKey{Namespace: f.key.Namespace, Name: fixtureConnection}, conn))
	conn.Spec.AllowedScopes = scopes
	conn.Generation++
	must(f.t, f.client.Update(context.Background(), conn))
}

// Counts alone are written at most once per refresh interval; a condition at once.
func TestConnectionStatusWritesCountsAtMostOncePerRefreshInterval(t *testing.T) {
	f := newConnectionStatusFixture(t, 60)
	f.reconcileConnection()
	writes := len(f.writes)
	limits := callbudget.Limits{Calls: 60, Interval: time.Minute}
	f.r.Budgets.Take(fixtureBudgetKey, limits, callbudget.Claim{Requester: "payments/other"}, f.clock.Now())
	result := f.reconcileConnection()
	if len(f.writes) != writes || result.RequeueAfter != DefaultConnectionStatusRefresh {
		t.Fatalf("a new call count was written at once (%v), or not planned for the refresh (%v)", f.writes[writes:], result.RequeueAfter)
	}
	must(t, f.client.Delete(context.Background(), credentialsSecret("")))
	f.reconcileConnection()
	if len(f.writes) != writes+1 {
		t.Fatalf("a condition change was not written at once (%v)", f.writes[writes:])
	}
	f.clock.Step(DefaultConnectionStatusRefresh)
	f.reconcileConnection()
	if got := f.connectionStatus().Budget.Calls; got != 1 {
		t.Fatalf("calls %d after the refresh interval, want 1", got)
	}
}

// A deleted connection leaves no budget and no series behind.
func TestADeletedConnectionIsForgotten(t *testing.T) {
	f := newConnectionStatusFixture(t, 60)
	f.reconcileConnection()
	if !f.r.Budgets.Seeded(fixtureBudgetKey) {
		t.Fatal("the status reconcile did not seed the connection's budget")
	}
	must(t, f.client.Delete(context.Background(), &tokensv1alpha1.BankConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.key.Namespace, Name: fixtureConnection}}))
	f.reconcileConnection()
	if f.r.Budgets.Seeded(fixtureBudgetKey) {
		t.Fatal("the deleted connection's budget was kept")
	}
	if n := seriesOf(f.status.Metrics.ready); n != 0 {
		t.Fatalf("%d ready series left for the deleted connection", n)
	}
}

// seriesOf counts the series a collector holds.
func seriesOf(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 64)
	c.Collect(ch)
	close(ch)
	return len(ch)
}
