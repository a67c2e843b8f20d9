package controller

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Metrics are registered on controller-runtime's registry, served on the manager's metrics
// endpoint. Labels carry names and classes, never a value from a Secret.
type Metrics struct {
	tokenExpiry      *prometheus.GaugeVec
	tokenReady       *prometheus.GaugeVec
	upstreamRequests *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec
	namespaceBusy    *prometheus.CounterVec
	lifecycle        lifecycleMetrics

	// providerLabels are the provider label each resource's series carry, so that a new one
	// (a request that moved to a connection of another provider, or was refused by one it
	// cannot read) replaces its series rather than leaving the old ones behind.
	mu             sync.Mutex
	providerLabels map[types.NamespacedName]string
}

// NewMetrics creates the metrics; Register adds them to a registry.
func NewMetrics() *Metrics {
	return &Metrics{
		tokenExpiry: resourceGauge("banktoken_token_expiry_timestamp_seconds",
			"When the token held in the output Secret expires, as a Unix timestamp."),
		tokenReady: resourceGauge("banktoken_token_ready",
			"1 when the BankTokenRequest's Ready condition is True, 0 otherwise."),
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
		lifecycle: newLifecycleMetrics(),
	}
}

// resourceGauge is a gauge with one series per BankTokenRequest.
func resourceGauge(name, help string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"namespace", "name", "provider"})
}

// Register adds the metrics to controller-runtime's registry (or another).
func (m *Metrics) Register(registry prometheus.Registerer) error {
	if registry == nil {
		registry = metrics.Registry
	}
	collectors := []prometheus.Collector{m.tokenExpiry, m.tokenReady, m.upstreamRequests, m.upstreamDuration, m.namespaceBusy}
	for _, c := range append(collectors, m.lifecycle.collectors()...) {
		if err := registry.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *Metrics) observe(btr *tokensv1alpha1.BankTokenRequest) {
	if m == nil {
		return
	}
	m.replaceSeriesOnNewProvider(btr)
	labels := []string{btr.Namespace, btr.Name, string(btr.Spec.Provider)}
	ready := 0.0
	if meta.IsStatusConditionTrue(btr.Status.Conditions, tokensv1alpha1.ConditionReady) {
		ready = 1
	}
	m.tokenReady.WithLabelValues(labels...).Set(ready)
	if btr.Status.ExpiresAt != nil {
		m.tokenExpiry.WithLabelValues(labels...).Set(float64(btr.Status.ExpiresAt.Unix()))
	} else {
		// No token held (access taken away): an old expiry would still look like one.
		m.tokenExpiry.DeleteLabelValues(labels...)
	}
	m.lifecycle.observe(btr, labels)
}

// replaceSeriesOnNewProvider forgets btr's series when they carry another provider label.
func (m *Metrics) replaceSeriesOnNewProvider(btr *tokensv1alpha1.BankTokenRequest) {
	key := types.NamespacedName{Namespace: btr.Namespace, Name: btr.Name}
	m.mu.Lock()
	last, seen := m.providerLabels[key]
	if m.providerLabels == nil {
		m.providerLabels = map[types.NamespacedName]string{}
	}
	m.providerLabels[key] = string(btr.Spec.Provider)
	m.mu.Unlock()
	if seen && last != string(btr.Spec.Provider) {
		m.deleteSeries(btr.Namespace, btr.Name)
	}
}

func (m *Metrics) forget(namespace, name string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	delete(m.providerLabels, types.NamespacedName{Namespace: namespace, Name: name})
	m.mu.Unlock()
	m.deleteSeries(namespace, name)
}

func (m *Metrics) deleteSeries(namespace, name string) {
	match := prometheus.Labels{"namespace": namespace, "name": name}
	m.tokenExpiry.DeletePartialMatch(match)
	m.tokenReady.DeletePartialMatch(match)
	m.lifecycle.forget(match)
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
