package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// What paces renewals, from the manager's own client-go metrics and from CPU profiles of
// the manager and the apiserver taken in the middle of the steady window.

// clientCounts are the manager's client-go metrics at one moment.
type clientCounts struct {
	requests             map[string]float64 // rest_client_requests_total by method
	limiterSum, limiterN float64            // rest_client_rate_limiter_duration_seconds
	latencySum, latencyN float64            // rest_client_request_duration_seconds
	queueSum, queueN     float64            // workqueue_queue_duration_seconds of the controller
	reconcileSum, reconN float64            // controller_runtime_reconcile_time_seconds of the controller
}

// clientDelta is what those metrics counted in the window.
type clientDelta clientCounts

func scrapeClient(ctx context.Context, hc *http.Client, address string) (clientCounts, error) {
	families, err := scrapeFamilies(ctx, hc, address)
	if err != nil {
		return clientCounts{}, err
	}
	c := clientCounts{requests: map[string]float64{}}
	if f := families["rest_client_requests_total"]; f != nil {
		for _, m := range f.GetMetric() {
			c.requests[labelValue(m, "method")] += m.GetCounter().GetValue()
		}
	}
	c.limiterSum, c.limiterN = histogramTotals(families["rest_client_rate_limiter_duration_seconds"], "", "")
	c.latencySum, c.latencyN = histogramTotals(families["rest_client_request_duration_seconds"], "", "")
	c.queueSum, c.queueN = histogramTotals(families["workqueue_queue_duration_seconds"], "name", controllerName)
	c.reconcileSum, c.reconN = histogramTotals(families["controller_runtime_reconcile_time_seconds"], "controller", controllerName)
	return c, nil
}

func (c clientCounts) minus(before clientCounts) clientDelta {
	d := clientDelta{requests: map[string]float64{},
		limiterSum: c.limiterSum - before.limiterSum, limiterN: c.limiterN - before.limiterN,
		latencySum: c.latencySum - before.latencySum, latencyN: c.latencyN - before.latencyN,
		queueSum: c.queueSum - before.queueSum, queueN: c.queueN - before.queueN,
		reconcileSum: c.reconcileSum - before.reconcileSum, reconN: c.reconN - before.reconN}
	for k, v := range c.requests {
		if v -= before.requests[k]; v > 0 {
			d.requests[k] = v
		}
	}
	return d
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// histogramTotals sums the sample sums and counts of a histogram's series whose label has
// value (every series when label is "").
func histogramTotals(f *dto.MetricFamily, label, value string) (sum, count float64) {
	if f == nil {
		return 0, 0
	}
	for _, m := range f.GetMetric() {
		if label != "" && !hasLabel(m, label, value) {
			continue
		}
		sum += m.GetHistogram().GetSampleSum()
		count += float64(m.GetHistogram().GetSampleCount())
	}
	return sum, count
}

func mean(sum, n float64) time.Duration {
	if n == 0 {
		return 0
	}
	return time.Duration(sum / n * float64(time.Second))
}

// profileTop is one CPU profile taken in the steady window: where it was written and the
// top of `go tool pprof -top`.
type profileTop struct {
	process, path, top string
	err                error
	workers            []workerTally // the manager's: where its workers were, three times
}

// profileSteady takes 30 s CPU profiles of the manager and the apiserver together, starting
// a third into the window (when it is long enough).
func (b *bench) profileSteady(ctx context.Context, c *cluster, pprofAddress string, window time.Duration) []profileTop {
	const seconds = 30
	if window < 40*time.Second || pprofAddress == "" {
		return nil
	}
	if err := sleepUntil(ctx, time.Now().Add(min(window/3, window-(seconds+5)*time.Second))); err != nil {
		return nil
	}
	manager := make(chan profileTop, 1)
	go func() {
		manager <- b.profile(ctx, http.DefaultClient, "manager", "steady-manager", fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddress, seconds))
	}()
	// Where the workers wait, 5, 15 and 25 s into the CPU profile.
	tallies := make(chan []workerTally, 1)
	go func() {
		var workers []workerTally
		for i := range 3 {
			if sleepUntil(ctx, time.Now().Add(time.Duration(min(i, 1)*5+5)*time.Second)) == nil {
				workers = append(workers, tallyWorkers(ctx, pprofAddress))
			}
		}
		tallies <- workers
	}()
	// kube-apiserver serves /debug/pprof by default (--profiling=true) to whoever may GET it:
	// the bench's admin client.
	api := b.profile(ctx, c.metricsHC, "apiserver", "steady-apiserver", fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimRight(c.Config.Host, "/"), seconds))
	m := <-manager
	m.workers = <-tallies
	return []profileTop{m, api}
}

// workerTally is where the manager's reconciling goroutines were at one moment, from its
// goroutine profile: waiting in client-go's client-side rate limiter, in a request to the
// apiserver, in a token call to the bank, or elsewhere.
type workerTally struct {
	reconciling, limiter, apiserver, bank int
	err                                   error
}

func (w workerTally) String() string {
	if w.err != nil {
		return w.err.Error()
	}
	return fmt.Sprintf("%d reconciling: %d in the client-side rate limiter, %d in an apiserver request, %d in a token call, %d elsewhere",
		w.reconciling, w.limiter, w.apiserver, w.bank, w.reconciling-w.limiter-w.apiserver-w.bank)
}

// tallyWorkers reads the manager's goroutine profile (debug=1: one block per distinct stack,
// with its count) and sorts the goroutines inside Reconcile by where they wait.
func tallyWorkers(ctx context.Context, pprofAddress string) (t workerTally) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+pprofAddress+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return workerTally{err: err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return workerTally{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return workerTally{err: err}
	}
	for _, block := range strings.Split(string(data), "\n\n") {
		var n int
		if _, err := fmt.Sscanf(block, "%d @", &n); err != nil || !strings.Contains(block, "BankTokenRequestReconciler).Reconcile") {
			continue
		}
		t.reconciling += n
		switch {
		case strings.Contains(block, "flowcontrol.(*tokenBucketRateLimiter).Wait"):
			t.limiter += n
		case strings.Contains(block, "internal/providers."):
			t.bank += n
		case strings.Contains(block, "k8s.io/client-go/rest.(*Request)"):
			t.apiserver += n
		}
	}
	return t
}

func (b *bench) profile(ctx context.Context, hc *http.Client, process, file, url string) profileTop {
	p := profileTop{process: process, path: b.profilePath(file)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		p.err = err
		return p
	}
	resp, err := hc.Do(req)
	if err != nil {
		p.err = err
		return p
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err == nil {
		err = os.WriteFile(p.path, data, 0o644)
	}
	if err != nil {
		p.err = err
		return p
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=12", p.path).Output()
	p.err = err
	// The lines from the table's heading on, without pprof's preamble but its totals.
	lines := strings.Split(string(bytes.TrimSpace(out)), "\n")
	var keep []string
	for _, l := range lines {
		if strings.HasPrefix(l, "Showing") || strings.HasPrefix(strings.TrimSpace(l), "flat") || len(keep) > 0 || strings.HasPrefix(l, "Duration") {
			keep = append(keep, l)
		}
	}
	p.top = strings.Join(keep, "\n")
	return p
}
