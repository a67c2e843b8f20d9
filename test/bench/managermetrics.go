package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// controllerName is the name the manager gives its BankTokenRequest controller: the label
// value of controller-runtime's reconcile and workqueue metrics.
const controllerName = "banktokenrequest"

// freeLoopbackAddress is a loopback address with a port nobody listens on right now, for
// a manager's plain-HTTP metrics endpoint.
func freeLoopbackAddress() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// metricsArgs make the manager serve its Prometheus metrics over plain HTTP on address,
// which must be a loopback address.
func metricsArgs(address string) []string {
	return []string{"--metrics-bind-address=" + address, "--metrics-secure=false"}
}

// queueState is what a manager's own metrics say about its BankTokenRequest controller.
type queueState struct {
	reconciles    float64 // controller_runtime_reconcile_total, summed over results
	depth         float64 // workqueue_depth: items waiting
	activeWorkers float64 // controller_runtime_active_workers: items being reconciled
}

// drained says whether at least want reconciles finished and nothing waits or runs.
func (q queueState) drained(want int) bool {
	return q.reconciles >= float64(want) && q.depth == 0 && q.activeWorkers == 0
}

// scrapeFamilies reads every metric family from a manager's metrics endpoint.
func scrapeFamilies(ctx context.Context, hc *http.Client, address string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+address+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics of the manager: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

// scrapeQueue reads the controller's queue state from a manager's metrics endpoint.
func scrapeQueue(ctx context.Context, hc *http.Client, address string) (queueState, error) {
	families, err := scrapeFamilies(ctx, hc, address)
	if err != nil {
		return queueState{}, err
	}
	return queueState{
		reconciles:    sumWhere(families["controller_runtime_reconcile_total"], "controller", controllerName),
		depth:         sumWhere(families["workqueue_depth"], "name", controllerName),
		activeWorkers: sumWhere(families["controller_runtime_active_workers"], "controller", controllerName),
	}, nil
}

// sumWhere sums the counter or gauge values of a family's series whose label has value;
// every series when label is "".
func sumWhere(f *dto.MetricFamily, label, value string) float64 {
	if f == nil {
		return 0
	}
	total := 0.0
	for _, m := range f.GetMetric() {
		if label != "" && !hasLabel(m, label, value) {
			continue
		}
		total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return total
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// waitDrained polls a manager's metrics until its controller has finished at least want
// reconciles with nothing waiting or running; it returns when it saw that. It polls every
// 100 ms per 5,000 resources: one scrape of a manager with 50,000 requests (several series
// each) takes it about a second, and ten a second piled up to 2 GiB of RSS in the manager.
func waitDrained(ctx context.Context, address string, want int, timeout time.Duration) (time.Time, queueState, error) {
	every := 100 * time.Millisecond * time.Duration(max(1, want/5000))
	hc := &http.Client{Timeout: 2*time.Second + 2*every}
	deadline := time.Now().Add(timeout)
	var last queueState
	var lastErr error
	for {
		q, err := scrapeQueue(ctx, hc, address)
		if err == nil && q.drained(want) {
			return time.Now(), q, nil
		}
		if err == nil {
			last = q
		}
		lastErr = err
		if time.Now().After(deadline) {
			return time.Time{}, last, fmt.Errorf("after %s: %.0f of %d reconciles, %.0f queued, %.0f running (last scrape error: %v)",
				timeout, last.reconciles, want, last.depth, last.activeWorkers, lastErr)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, last, ctx.Err()
		case <-time.After(every):
		}
	}
}
