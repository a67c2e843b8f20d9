package controller

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// One state series per resource; no renewal series while Stalled; nothing left once forgotten.
func TestLifecycleMetricsKeepOneSeriesPerResource(t *testing.T) {
	m := NewMetrics()
	registry := prometheus.NewRegistry()
	if err := m.Register(registry); err != nil {
		t.Fatal(err)
	}
	btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "paymob"},
		Spec: tokensv1alpha1.BankTokenRequestSpec{BankClient: tokensv1alpha1.BankClient{
			Provider: "Paymob",
		}}}
	btr.Status.RenewalTime = &metav1.Time{Time: time.Unix(1200, 0)}
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

func seriesCounts(t *testing.T, registry *prometheus.Registry) map[string]int {
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
	m := NewMetrics()
	registry := prometheus.NewRegistry()
	if err := m.Register(registry); err != nil {
		t.Fatal(err)
	}
	btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "paymob"},
		Spec: tokensv1alpha1.BankTokenRequestSpec{BankClient: tokensv1alpha1.BankClient{Provider: "Paymob"}}}
	btr.Status.ExpiresAt = &metav1.Time{Time: time.Unix(1200, 0)}
	m.observe(btr)
	btr.Spec.Provider, btr.Status.ExpiresAt = "", nil
	m.observe(btr)
	counts := seriesCounts(t, registry)
	if counts["banktoken_token_ready"] != 1 || counts["banktoken_token_state"] != 1 || counts["banktoken_token_expiry_timestamp_seconds"] != 0 {
		t.Errorf("after the provider label changed and the token was taken away: series %v, want one ready, one state, no expiry", counts)
	}
}
