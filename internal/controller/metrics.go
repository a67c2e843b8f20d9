package controller

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Metrics are registered on controller-runtime's registry, served on the manager's metrics
// endpoint. Labels carry names and classes, never a value from a Secret.
type Metrics struct {
	upstreamRequests *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec
	namespaceBusy    *prometheus.CounterVec
	// requests are each BankTokenRequest's series, made at scrape time from the cache.
	requests *requestMetrics
}

// NewMetrics creates the metrics; Register adds them to a registry.
func NewMetrics() *Metrics {
	return &Metrics{
		upstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "banktoken_upstream_requests_total",
			Help: "Token endpoint calls by provider, grant and result (success or the failure reason).",
		}, []string{"provider", "grant", "result"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "banktoken_upstream_request_duration_seconds",
			Help:    "Duration of token endpoint calls by provider.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{"provider"}),
		namespaceBusy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "banktoken_namespace_busy_reconciles_total",
			Help: "Reconciles put back because their namespace already had its share of token calls under way.",
		}, []string{"namespace"}),
		requests: newRequestMetrics(),
	}
}

// Register adds the metrics to controller-runtime's registry (or another).
func (m *Metrics) Register(registry prometheus.Registerer) error {
	if registry == nil {
		registry = metrics.Registry
	}
	for _, c := range []prometheus.Collector{m.upstreamRequests, m.upstreamDuration, m.namespaceBusy, m.requests} {
		if err := registry.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// readRequestsFrom makes the per-request series from the requests reader (the manager's
// cache) holds.
func (m *Metrics) readRequestsFrom(reader client.Reader) {
	if m == nil {
		return
	}
	m.requests.readFrom(cachedRequests(reader))
}

// observe notes that btr, the effective request (its provider its connection's, if it names
// one), was reconciled here: its series are exported from now on, from the cache's status.
func (m *Metrics) observe(btr *tokensv1alpha1.BankTokenRequest) {
	if m == nil {
		return
	}
	m.requests.observed(types.NamespacedName{Namespace: btr.Namespace, Name: btr.Name}, string(btr.Spec.Provider))
}

// forget stops exporting a request's series: it is gone, or no longer this shard's.
func (m *Metrics) forget(namespace, name string) {
	if m == nil {
		return
	}
	m.requests.forget(types.NamespacedName{Namespace: namespace, Name: name})
}

func (m *Metrics) observeUpstream(provider tokensv1alpha1.Provider, grant providers.GrantType, err error, took time.Duration) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "error"
		var perr *providers.Error
		if errors.As(err, &perr) {
			result = perr.Reason
		}
	}
	m.upstreamRequests.WithLabelValues(string(provider), string(grant), result).Inc()
	m.upstreamDuration.WithLabelValues(string(provider)).Observe(took.Seconds())
}

func (m *Metrics) observeNamespaceBusy(namespace string) {
	if m == nil {
		return
	}
	m.namespaceBusy.WithLabelValues(namespace).Inc()
}
