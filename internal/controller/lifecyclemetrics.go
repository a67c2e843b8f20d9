package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Token states of the banktoken_token_state gauge, as an on-call engineer sorts them.
const (
	stateReady          = "Ready"
	stateRefreshFailing = "RefreshFailing"
	stateExpired        = "Expired"
	stateStalled        = "Stalled"
	stateSuspended      = "Suspended"
	statePending        = "Pending"
)

var tokenStates = []string{stateReady, stateRefreshFailing, stateExpired, stateStalled, stateSuspended, statePending}

// lifecycleMetrics are the per-resource series the shipped alerts and dashboard read
// (config/prometheus, config/grafana): where a resource stands and when it is due. Each
// resource has one series per gauge; the state gauge keeps only the current state's series.
type lifecycleMetrics struct {
	state          *prometheus.GaugeVec
	renewal        *prometheus.GaugeVec
	failedAttempts *prometheus.GaugeVec
}

func newLifecycleMetrics() lifecycleMetrics {
	return lifecycleMetrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "banktoken_token_state",
			Help: "1 for the BankTokenRequest's current state: Ready, RefreshFailing, Expired, Stalled, Suspended or Pending.",
		}, []string{"namespace", "name", "provider", "state"}),
		renewal: resourceGauge("banktoken_token_renewal_timestamp_seconds",
			"When the operator next renews the token (or retries after a failure), as a Unix timestamp; absent while none is planned (Stalled, Suspended)."),
		failedAttempts: resourceGauge("banktoken_token_failed_attempts",
			"Consecutive failed attempts to obtain a token; 0 after a success."),
	}
}

func (l lifecycleMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{l.state, l.renewal, l.failedAttempts}
}

func (l lifecycleMetrics) observe(btr *tokensv1alpha1.BankTokenRequest, labels []string) {
	current := tokenState(btr)
	for _, state := range tokenStates {
		if state != current {
			l.state.DeleteLabelValues(append(labels, state)...)
		}
	}
	l.state.WithLabelValues(append(labels, current)...).Set(1)
	l.failedAttempts.WithLabelValues(labels...).Set(float64(btr.Status.FailedAttempts))
	// A Stalled resource keeps an old renewal time in status; none is planned, so none is exported.
	if btr.Status.RenewalTime == nil || current == stateStalled {
		l.renewal.DeleteLabelValues(labels...)
		return
	}
	l.renewal.WithLabelValues(labels...).Set(float64(btr.Status.RenewalTime.Unix()))
}

func (l lifecycleMetrics) forget(match prometheus.Labels) {
	for _, gauge := range []*prometheus.GaugeVec{l.state, l.renewal, l.failedAttempts} {
		gauge.DeletePartialMatch(match)
	}
}

// tokenState reads the state from the conditions report wrote: Stalled first, as it needs a
// person; then what Ready says of the token the workload holds.
func tokenState(btr *tokensv1alpha1.BankTokenRequest) string {
	conditions := btr.Status.Conditions
	if meta.IsStatusConditionTrue(conditions, tokensv1alpha1.ConditionStalled) {
		return stateStalled
	}
	ready := meta.FindStatusCondition(conditions, tokensv1alpha1.ConditionReady)
	switch {
	case ready == nil:
		return statePending
	case ready.Reason == tokensv1alpha1.ReasonSuspended:
		return stateSuspended
	case ready.Reason == tokensv1alpha1.ReasonTokenExpired:
		return stateExpired
	case ready.Status == "True" && (ready.Reason == tokensv1alpha1.ReasonRefreshFailing || btr.Status.FailedAttempts > 0):
		return stateRefreshFailing
	case ready.Status == "True":
		return stateReady
	}
	return statePending
}
