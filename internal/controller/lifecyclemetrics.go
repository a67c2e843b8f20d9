package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

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
	current := tokensv1alpha1.TokenState(&btr.Status)
	for _, state := range tokensv1alpha1.TokenStates {
		if state != current {
			l.state.DeleteLabelValues(append(labels, state)...)
		}
	}
	l.state.WithLabelValues(append(labels, current)...).Set(1)
	l.failedAttempts.WithLabelValues(labels...).Set(float64(btr.Status.FailedAttempts))
	// A Stalled resource keeps an old renewal time in status; none is planned, so none is exported.
	if btr.Status.RenewalTime == nil || current == tokensv1alpha1.TokenStateStalled {
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
