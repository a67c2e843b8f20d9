package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/banktoken/bank-token-operator/internal/callbudget"
)

// ConnectionMetrics are the connections' own series, beside their call budgets' (package
// callbudget), with the same labels: kind, namespace ("" for a ClusterBankConnection) and
// connection. The alerts match these names.
type ConnectionMetrics struct {
	ready *prometheus.GaugeVec
}

// NewConnectionMetrics creates the metrics; Register adds them to a registry.
func NewConnectionMetrics() *ConnectionMetrics {
	return &ConnectionMetrics{ready: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "banktoken_connection_ready",
		Help: "1 when the BankConnection's or ClusterBankConnection's Ready condition is True (credentials ready, not paused by the bank), 0 otherwise.",
	}, []string{"kind", "namespace", "connection"})}
}

// Register adds the metrics to controller-runtime's registry (or another).
func (m *ConnectionMetrics) Register(registry prometheus.Registerer) error {
	if registry == nil {
		registry = metrics.Registry
	}
	return registry.Register(m.ready)
}

func (m *ConnectionMetrics) observe(key callbudget.Key, ready bool) {
	if m == nil {
		return
	}
	value := 0.0
	if ready {
		value = 1
	}
	m.ready.WithLabelValues(key.Kind, key.Namespace, key.Name).Set(value)
}

// forget drops a deleted connection's series.
func (m *ConnectionMetrics) forget(key callbudget.Key) {
	if m == nil {
		return
	}
	m.ready.DeleteLabelValues(key.Kind, key.Namespace, key.Name)
}
