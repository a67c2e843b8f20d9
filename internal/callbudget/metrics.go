package callbudget

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// connectionLabels are every series' labels: one series per connection, never per request.
// namespace is "" for a ClusterBankConnection.
var connectionLabels = []string{"kind", "namespace", "connection"}

// Metrics are the call budgets' series, registered on controller-runtime's registry and
// served on the manager's metrics endpoint. The alert rules match these names.
type Metrics struct {
	calls     *prometheus.CounterVec
	throttled *prometheus.CounterVec
	pauses    *prometheus.CounterVec
	paused    *pausedGauge
}

// NewMetrics creates the metrics; Register adds them to a registry, New(Options{Metrics})
// feeds them.
func NewMetrics() *Metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, connectionLabels)
	}
	return &Metrics{
		calls: counter("banktoken_connection_calls_total",
			"Token calls the connection's call budget granted (a refunded grant, whose call never went out, stays counted)."),
		throttled: counter("banktoken_connection_throttled_total",
			"Token calls the connection's call budget refused for now: budget spent, kept for more urgent requests, or paused by the bank."),
		pauses: counter("banktoken_connection_pauses_total",
			"Pauses the bank imposed on the connection (429 or Retry-After); an answer that extends a running pause is not counted again."),
		paused: &pausedGauge{desc: prometheus.NewDesc("banktoken_connection_paused",
			"1 while the connection is paused because the bank asked (429 or Retry-After), 0 otherwise.", connectionLabels, nil)},
	}
}

// Register adds the metrics to controller-runtime's registry (or another).
func (m *Metrics) Register(registry prometheus.Registerer) error {
	if registry == nil {
		registry = metrics.Registry
	}
	for _, c := range []prometheus.Collector{m.calls, m.throttled, m.pauses, m.paused} {
		if err := registry.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func labelValues(key Key) []string { return []string{key.Kind, key.Namespace, key.Name} }

// countersFor resolves a connection's counters once, so that a take costs no label lookup.
func (m *Metrics) countersFor(key Key) connectionCounters {
	if m == nil {
		return connectionCounters{}
	}
	labels := labelValues(key)
	return connectionCounters{
		calls:     m.calls.WithLabelValues(labels...),
		throttled: m.throttled.WithLabelValues(labels...),
		pauses:    m.pauses.WithLabelValues(labels...),
	}
}

func (m *Metrics) forget(key Key) {
	if m == nil {
		return
	}
	labels := labelValues(key)
	m.calls.DeleteLabelValues(labels...)
	m.throttled.DeleteLabelValues(labels...)
	m.pauses.DeleteLabelValues(labels...)
}

// watch makes the paused gauge read budgets.
func (m *Metrics) watch(budgets *Budgets) {
	if m == nil {
		return
	}
	m.paused.mu.Lock()
	defer m.paused.mu.Unlock()
	m.paused.budgets = budgets
}

// connectionCounters are one connection's counters; the zero value counts nothing.
type connectionCounters struct {
	calls, throttled, pauses prometheus.Counter
}

func (c connectionCounters) grant()      { inc(c.calls) }
func (c connectionCounters) throttle()   { inc(c.throttled) }
func (c connectionCounters) pauseBegun() { inc(c.pauses) }

func inc(counter prometheus.Counter) {
	if counter != nil {
		counter.Inc()
	}
}

// pausedGauge is read when scraped: a pause ends by the clock, with no call to say so, and
// a gauge set only on calls would say paused long after the bank's pause ended.
type pausedGauge struct {
	desc    *prometheus.Desc
	mu      sync.Mutex
	budgets *Budgets
}

func (g *pausedGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g *pausedGauge) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	budgets := g.budgets
	g.mu.Unlock()
	if budgets == nil {
		return
	}
	for key, paused := range budgets.pausedNow() {
		value := 0.0
		if paused {
			value = 1
		}
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, value, labelValues(key)...)
	}
}
