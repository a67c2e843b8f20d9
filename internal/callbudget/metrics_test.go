package callbudget

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestMetricsPerConnection(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(start)
	metrics := NewMetrics()
	registry := prometheus.NewRegistry()
	if err := metrics.Register(registry); err != nil {
		t.Fatal(err)
	}
	b := noSpacing(Options{Metrics: metrics, Clock: clock})
	limits := perMinute(2)
	fill(t, b, bankA, limits, at(0))
	mustRefuse(t, b, bankA, limits, Claim{Requester: "r"}, at(time.Second), RefusedWindowFull)
	mustGrant(t, b, bankB, limits, Claim{Requester: "r"}, at(time.Second))
	b.Pause(bankA, at(time.Hour), "RateLimited", at(time.Second))
	b.Pause(bankA, at(2*time.Hour), "RateLimited", at(2*time.Second)) // extends: not a new pause
	clock.SetTime(at(time.Minute))

	for _, want := range []struct {
		name  string
		key   Key
		value float64
	}{
		{"banktoken_connection_calls_total", bankA, 2},
		{"banktoken_connection_calls_total", bankB, 1},
		{"banktoken_connection_throttled_total", bankA, 1},
		{"banktoken_connection_throttled_total", bankB, 0},
		{"banktoken_connection_pauses_total", bankA, 1},
		{"banktoken_connection_pauses_total", bankB, 0},
		{"banktoken_connection_paused", bankA, 1},
		{"banktoken_connection_paused", bankB, 0},
	} {
		if got, ok := series(t, registry, want.name)[want.key]; !ok || got != want.value {
			t.Errorf("%s%v = %v (present %v), want %v", want.name, labelValues(want.key), got, ok, want.value)
		}
	}

	// The pause ends by the clock, with no call to say so: the gauge follows at the scrape.
	clock.SetTime(at(2 * time.Hour))
	b.Forget(bankB)
	if paused := series(t, registry, "banktoken_connection_paused"); len(paused) != 1 || paused[bankA] != 0 {
		t.Errorf("paused after the pause ended and bank-b was forgotten: %v", paused)
	}
	if calls := series(t, registry, "banktoken_connection_calls_total"); len(calls) != 1 {
		t.Errorf("calls series after bank-b was forgotten: %v", calls)
	}
}

// series is a metric's value by connection, as scraped.
func series(t *testing.T, registry *prometheus.Registry, name string) map[Key]float64 {
	t.Helper()
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[Key]float64{}
	for _, family := range families {
		if family.GetName() != name {
			continue
		}
		for _, m := range family.GetMetric() {
			values[keyOfLabels(m.GetLabel())] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return values
}

func keyOfLabels(labels []*dto.LabelPair) Key {
	var key Key
	for _, l := range labels {
		switch l.GetName() {
		case "kind":
			key.Kind = l.GetValue()
		case "namespace":
			key.Namespace = l.GetValue()
		case "connection":
			key.Name = l.GetValue()
		}
	}
	return key
}

func TestNoMetrics(t *testing.T) {
	b := New(Options{})
	mustGrant(t, b, bankA, perMinute(1), Claim{Requester: "r"}, at(0))
	b.Pause(bankA, at(time.Minute), "RateLimited", at(0))
	b.Forget(bankA)
}
