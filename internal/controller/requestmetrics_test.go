package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// fakeRequestCache stands for the manager's cache: the requests it holds, by pointer, as
// the informer's store hands them over.
type fakeRequestCache struct {
	mu       sync.Mutex
	requests []*tokensv1alpha1.BankTokenRequest
}

func (f *fakeRequestCache) list(_ context.Context, visit func(*tokensv1alpha1.BankTokenRequest)) error {
	f.mu.Lock()
	requests := f.requests
	f.mu.Unlock()
	for _, btr := range requests {
		visit(btr)
	}
	return nil
}

func (f *fakeRequestCache) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var kept []*tokensv1alpha1.BankTokenRequest
	for _, btr := range f.requests {
		if btr.Name != name {
			kept = append(kept, btr)
		}
	}
	f.requests = kept
}

// registeredMetrics are metrics registered on a registry of their own, reading cached.
func registeredMetrics(t testing.TB, cached *fakeRequestCache) (*Metrics, *prometheus.Registry) {
	t.Helper()
	m := NewMetrics()
	registry := prometheus.NewRegistry()
	if err := m.Register(registry); err != nil {
		t.Fatal(err)
	}
	m.requests.readFrom(cached.list)
	return m, registry
}

func metricsRequest(namespace, name string, provider tokensv1alpha1.Provider) *tokensv1alpha1.BankTokenRequest {
	return &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: tokensv1alpha1.BankTokenRequestSpec{BankClient: tokensv1alpha1.BankClient{Provider: provider}}}
}

func unixTime(seconds int64) *metav1.Time { return &metav1.Time{Time: time.Unix(seconds, 0)} }

// The names, help texts, labels and values the alerts (config/prometheus/alerts.yaml) and
// the dashboard read, for a Ready request, one failing to refresh, a Stalled one; none for
// a deleted request, nor for one this process has not reconciled yet.
func TestRequestMetricsOfAReadyAFailingAStalledAndADeletedRequest(t *testing.T) {
	ready := metricsRequest("payments", "paymob", "Paymob")
	ready.Status.ExpiresAt, ready.Status.RenewalTime = unixTime(1800), unixTime(1200)
	ready.Status.Conditions = []metav1.Condition{{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonTokenIssued}}
	failing := metricsRequest("payments", "adcb", "ADCB")
	failing.Status.ExpiresAt, failing.Status.RenewalTime, failing.Status.FailedAttempts = unixTime(7200), unixTime(1260), 3
	failing.Status.Conditions = []metav1.Condition{{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonRefreshFailing}}
	stalled := metricsRequest("lending", "fab", "FAB")
	stalled.Status.RenewalTime, stalled.Status.FailedAttempts = unixTime(900), 1
	stalled.Status.Conditions = []metav1.Condition{
		{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "InvalidCredentials"},
		{Type: tokensv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "InvalidCredentials"},
	}
	deleted := metricsRequest("payments", "deleted", "Paymob")
	deleted.Status.ExpiresAt = unixTime(600)
	notYetReconciled := metricsRequest("payments", "new", "Paymob")
	notYetReconciled.Status.ExpiresAt = unixTime(600)

	cached := &fakeRequestCache{requests: []*tokensv1alpha1.BankTokenRequest{ready, failing, stalled, deleted, notYetReconciled}}
	m, registry := registeredMetrics(t, cached)
	for _, btr := range []*tokensv1alpha1.BankTokenRequest{ready, failing, stalled, deleted} {
		m.observe(btr)
	}
	cached.remove("deleted") // gone from the cache; its reconcile (NotFound) has not run yet

	want := `
# HELP banktoken_token_expiry_timestamp_seconds When the token held in the output Secret expires, as a Unix timestamp.
# TYPE banktoken_token_expiry_timestamp_seconds gauge
banktoken_token_expiry_timestamp_seconds{name="adcb",namespace="payments",provider="ADCB"} 7200
banktoken_token_expiry_timestamp_seconds{name="paymob",namespace="payments",provider="Paymob"} 1800
# HELP banktoken_token_failed_attempts Consecutive failed attempts to obtain a token; 0 after a success.
# TYPE banktoken_token_failed_attempts gauge
banktoken_token_failed_attempts{name="adcb",namespace="payments",provider="ADCB"} 3
banktoken_token_failed_attempts{name="fab",namespace="lending",provider="FAB"} 1
banktoken_token_failed_attempts{name="paymob",namespace="payments",provider="Paymob"} 0
# HELP banktoken_token_ready 1 when the BankTokenRequest's Ready condition is True, 0 otherwise.
# TYPE banktoken_token_ready gauge
banktoken_token_ready{name="adcb",namespace="payments",provider="ADCB"} 1
banktoken_token_ready{name="fab",namespace="lending",provider="FAB"} 0
banktoken_token_ready{name="paymob",namespace="payments",provider="Paymob"} 1
# HELP banktoken_token_renewal_timestamp_seconds When the operator next renews the token (or retries after a failure), as a Unix timestamp; absent while none is planned (Stalled, Suspended).
# TYPE banktoken_token_renewal_timestamp_seconds gauge
banktoken_token_renewal_timestamp_seconds{name="adcb",namespace="payments",provider="ADCB"} 1260
banktoken_token_renewal_timestamp_seconds{name="paymob",namespace="payments",provider="Paymob"} 1200
# HELP banktoken_token_state 1 for the BankTokenRequest's current state: Ready, RefreshFailing, Expired, Stalled, Suspended or Pending.
# TYPE banktoken_token_state gauge
banktoken_token_state{name="adcb",namespace="payments",provider="ADCB",state="RefreshFailing"} 1
banktoken_token_state{name="fab",namespace="lending",provider="FAB",state="Stalled"} 1
banktoken_token_state{name="paymob",namespace="payments",provider="Paymob",state="Ready"} 1
`
	if err := testutil.GatherAndCompare(registry, strings.NewReader(want), requestMetricNames...); err != nil {
		t.Error(err)
	}

	// The reconcile that finds it gone forgets it: back in the cache under the same name
	// (recreated), it is not exported before its first reconcile.
	m.forget("payments", "deleted")
	cached.requests = append(cached.requests, deleted)
	if counts := seriesCounts(t, registry); counts["banktoken_token_expiry_timestamp_seconds"] != 2 {
		t.Errorf("a recreated request not reconciled yet is exported: %v", counts)
	}
}

var requestMetricNames = []string{"banktoken_token_expiry_timestamp_seconds", "banktoken_token_failed_attempts",
	"banktoken_token_ready", "banktoken_token_renewal_timestamp_seconds", "banktoken_token_state"}

// One state series per resource; no renewal series while Stalled; nothing left once forgotten.
func TestLifecycleMetricsKeepOneSeriesPerResource(t *testing.T) {
	btr := metricsRequest("payments", "paymob", "Paymob")
	m, registry := registeredMetrics(t, &fakeRequestCache{requests: []*tokensv1alpha1.BankTokenRequest{btr}})
	btr.Status.RenewalTime = unixTime(1200)
	btr.Status.Conditions = []metav1.Condition{{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: tokensv1alpha1.ReasonTokenIssued}}
	m.observe(btr)
	btr.Status.Conditions = append(btr.Status.Conditions, metav1.Condition{Type: tokensv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "InvalidCredentials"})
	btr.Status.FailedAttempts = 1
	m.observe(btr)
	counts := seriesCounts(t, registry)
	if counts["banktoken_token_state"] != 1 || counts["banktoken_token_renewal_timestamp_seconds"] != 0 || counts["banktoken_token_failed_attempts"] != 1 {
		t.Errorf("after Ready then Stalled: series %v, want one state, no renewal, one failed-attempts", counts)
	}
	m.forget("payments", "paymob")
	for name, n := range seriesCounts(t, registry) {
		if n != 0 && name != "banktoken_upstream_requests_total" {
			t.Errorf("after forget: %d series of %s", n, name)
		}
	}
}

func seriesCounts(t testing.TB, registry *prometheus.Registry) map[string]int {
	t.Helper()
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, family := range families {
		counts[family.GetName()] = len(family.GetMetric())
	}
	return counts
}

// A request whose provider label changes (it moved to a connection of another bank, or was
// refused by a connection it cannot read) keeps one series per gauge, and one that holds no
// token any more exports no expiry.
func TestMetricsFollowANewProviderAndATokenTakenAway(t *testing.T) {
	btr := metricsRequest("payments", "paymob", "Paymob")
	m, registry := registeredMetrics(t, &fakeRequestCache{requests: []*tokensv1alpha1.BankTokenRequest{btr}})
	btr.Status.ExpiresAt = unixTime(1200)
	m.observe(btr)
	btr.Spec.Provider, btr.Status.ExpiresAt = "", nil
	m.observe(btr)
	counts := seriesCounts(t, registry)
	if counts["banktoken_token_ready"] != 1 || counts["banktoken_token_state"] != 1 || counts["banktoken_token_expiry_timestamp_seconds"] != 0 {
		t.Errorf("after the provider label changed and the token was taken away: series %v, want one ready, one state, no expiry", counts)
	}
}

// Scrapes run at once, beside reconciles that observe and forget requests (run with -race).
func TestRequestMetricsServeConcurrentScrapes(t *testing.T) {
	cached := &fakeRequestCache{}
	for i := range 200 {
		btr := metricsRequest("payments", fmt.Sprintf("token-%d", i), "Paymob")
		btr.Status.ExpiresAt = unixTime(int64(1000 + i))
		cached.requests = append(cached.requests, btr)
	}
	m, registry := registeredMetrics(t, cached)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if _, err := registry.Gather(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for round := range 5 {
			for _, btr := range cached.requests {
				if round%2 == 0 {
					m.observe(btr)
				} else {
					m.forget(btr.Namespace, btr.Name)
				}
			}
		}
	})
	wg.Wait()
	if n := seriesCounts(t, registry)["banktoken_token_expiry_timestamp_seconds"]; n != len(cached.requests) {
		t.Errorf("after the last round observed every request: %d expiry series, want %d", n, len(cached.requests))
	}
}

// A cache that is not one informer (--watch-namespaces) is listed, without a deep copy.
func TestCachedRequestsListsAReaderThatIsNotOneInformer(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := tokensv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	reader := fake.NewClientBuilder().WithScheme(scheme).
		WithObjects(metricsRequest("payments", "paymob", "Paymob"), metricsRequest("lending", "fab", "FAB")).Build()
	var names []string
	err := cachedRequests(reader)(context.Background(), func(btr *tokensv1alpha1.BankTokenRequest) {
		names = append(names, btr.Namespace+"/"+btr.Name)
	})
	if err != nil || len(names) != 2 {
		t.Errorf("listed %v (%v), want the two requests", names, err)
	}
}
