package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Memory and start-up at N = 50,000 long-lived tokens: a manager started on a backlog of N,
// its peak and settled RSS against a manager with nothing to do, then kill -9 and a restart
// with N valid tokens: how long it takes to settle and what it calls.

const (
	targetLargeRSS     = 300 << 20
	targetLargeRestart = 30 * time.Second
)

type largeResult struct {
	N                int
	Err              error
	Settle           time.Duration
	CreateSeconds    float64 // the bench's creates of the N requests
	EmptyHWM         int64   // a manager with no request, after --memory-settle
	EmptyRSS         int64
	StartedAfter     time.Duration // backlog: process start -> workers run
	ReadySeconds     float64       // backlog: process start -> all Ready
	Calls            int64         // backlog: token calls
	PeakRSS          int64         // backlog manager's VmHWM
	SettledRSS       int64         // its RSS --memory-settle after all were Ready
	FileRSS          int64
	ManagerCPU       float64
	RestartSettled   float64 // restart: process start -> every resource reconciled, queue empty
	RestartCalls     int64
	RestartGets      float64 // Secret GETs from the start until settled
	RestartPeakRSS   int64
	RestartSettleRSS int64
	Heap             profileTop // the backlog manager's heap once settled
	Load             [2]string
}

// bytesPerToken is what one more token costs in settled RSS over a manager with none.
func (r largeResult) bytesPerToken() float64 {
	return float64(r.SettledRSS-r.EmptyRSS) / float64(r.N)
}

func (b *bench) runLarge(ctx context.Context) (res largeResult) {
	res.N, res.Settle = b.largeN, b.memSettle
	res.Load[0] = loadavg()
	defer func() { res.Load[1] = loadavg() }()
	b.bank.setLifetime(b.tokenLifetime)
	timeout := max(b.timeout, time.Duration(res.N)*20*time.Millisecond) // at least 50/s
	logf("memory50k N=%d: creating %d credentials Secrets", res.N, res.N)
	run, err := b.prepare(ctx, runSetup{credentials: res.N})
	if err != nil {
		res.Err = err
		return res
	}
	defer run.close()
	c := run.cluster
	logf("memory50k: a manager with no request")
	if res.EmptyHWM, res.EmptyRSS, err = b.managerMemory(c, "large-empty"); err != nil {
		res.Err = err
		return res
	}
	logf("memory50k: creating %d BankTokenRequests; no manager runs", res.N)
	_, first, last, err := b.createRequests(ctx, c, benchNamespace, 0, res.N, b.bank.url)
	if err != nil {
		res.Err = err
		return res
	}
	res.CreateSeconds = last.Sub(first).Seconds()
	if res.Err = b.largeBacklog(ctx, run, &res, timeout); res.Err != nil {
		return res
	}
	res.Err = b.largeRestart(ctx, run, &res, timeout)
	return res
}

// largeBacklog starts a manager on the N waiting requests and measures it until all are
// Ready and --memory-settle after.
func (b *bench) largeBacklog(ctx context.Context, run *benchRun, res *largeResult, timeout time.Duration) error {
	callsBefore := b.bank.calls.Load()
	pprofAddress, err := freeLoopbackAddress()
	if err != nil {
		return err
	}
	logf("memory50k: starting the manager on a backlog of %d", res.N)
	start := time.Now()
	m, err := b.startManager(run.cluster, "large-backlog", "--pprof-bind-address="+pprofAddress)
	if err != nil {
		return err
	}
	run.manager = m
	res.StartedAfter = time.Since(start)
	allReady, err := run.obs.waitAll(ctx, names(res.N), timeout)
	if err != nil {
		return err
	}
	res.ReadySeconds = allReady.Sub(start).Seconds()
	res.ManagerCPU = m.CPUSeconds()
	res.Calls = b.bank.calls.Load() - callsBefore
	logf("memory50k: all Ready %.1fs after the manager started; settling for %s", res.ReadySeconds, res.Settle)
	if err := sleepUntil(ctx, time.Now().Add(res.Settle)); err != nil {
		return err
	}
	res.PeakRSS, res.SettledRSS = m.Memory()
	res.FileRSS = m.FileBackedMemory()
	res.Heap = b.profile(ctx, http.DefaultClient, "manager", "large-manager-heap", "http://"+pprofAddress+"/debug/pprof/heap")
	return nil
}

// largeRestart kills the manager and starts another on the N valid tokens.
func (b *bench) largeRestart(ctx context.Context, run *benchRun, res *largeResult, timeout time.Duration) error {
	if err := run.manager.Kill(); err != nil {
		return err
	}
	run.manager = nil
	before, err := b.readCounters(ctx, run.cluster)
	if err != nil {
		return err
	}
	address, err := freeLoopbackAddress()
	if err != nil {
		return err
	}
	logf("memory50k: killed; starting a new manager")
	start := time.Now()
	if run.manager, err = b.startManager(run.cluster, "large-restart", metricsArgs(address)...); err != nil {
		return err
	}
	settledAt, _, err := waitDrained(ctx, address, res.N, timeout)
	if err != nil {
		return err
	}
	res.RestartSettled = settledAt.Sub(start).Seconds()
	after, err := run.cluster.scrapeRequests(ctx)
	if err != nil {
		return err
	}
	res.RestartGets = requestsBetween(before.requests, after, "GET", "secrets")
	res.RestartCalls = b.bank.calls.Load() - before.calls
	if err := sleepUntil(ctx, time.Now().Add(res.Settle)); err != nil {
		return err
	}
	res.RestartPeakRSS, res.RestartSettleRSS = run.manager.Memory()
	return nil
}

func reportLarge(p printFunc, check checkFunc, r *largeResult) {
	if r == nil {
		return
	}
	p("### Memory and start-up at N=%d long-lived tokens", r.N)
	p("")
	if r.Err != nil {
		p("failed: %v", r.Err)
		p("")
		return
	}
	n := float64(r.N)
	p("| | RSS peak (VmHWM) | RSS settled (%s after) | time | token calls | Secret GETs per resource |", r.Settle)
	p("|---|---:|---:|---:|---:|---:|")
	p("| a manager with no request | %.1f MiB | %.1f MiB | | | |", mib(r.EmptyHWM), mib(r.EmptyRSS))
	p("| backlog: started on %d waiting requests | **%.1f MiB** | %.1f MiB | all Ready %.1f s after the start (%.0f/s; workers after %.1f s) | %d | |",
		r.N, mib(r.PeakRSS), mib(r.SettledRSS), r.ReadySeconds, n/r.ReadySeconds, r.StartedAfter.Seconds(), r.Calls)
	p("| restart (kill -9) with %d valid tokens | %.1f MiB | %.1f MiB | settled %.1f s after the start | %d | %.3f |",
		r.N, mib(r.RestartPeakRSS), mib(r.RestartSettleRSS), r.RestartSettled, r.RestartCalls, r.RestartGets/n)
	p("")
	p("- %.0f bytes per token (settled RSS over the empty manager's, / N); of the settled RSS %.1f MiB are the binary's mapped pages (RssFile); "+
		"manager CPU %.1f s for the backlog (%.2f ms per token); the bench created the requests in %.1f s; load %s → %s",
		r.bytesPerToken(), mib(r.FileRSS), r.ManagerCPU, 1000*r.ManagerCPU/n, r.CreateSeconds, r.Load[0], r.Load[1])
	p("- settled: the new manager's metrics showed ≥ N reconciles, an empty queue and no busy worker (polled every 100 ms per 5,000 resources: %s)",
		100*time.Millisecond*time.Duration(max(1, r.N/5000)))
	if r.Heap.err != nil {
		p("- heap profile: %v", r.Heap.err)
	} else if r.Heap.top != "" {
		p("- the backlog manager's heap once settled (`go tool pprof -top %s`, in-use bytes):", r.Heap.path)
		p("")
		p("  ```")
		for _, l := range strings.Split(r.Heap.top, "\n") {
			p("  %s", l)
		}
		p("  ```")
	}
	p("")
	label := fmt.Sprintf("N=%d", r.N)
	check(max(r.PeakRSS, r.RestartPeakRSS) <= targetLargeRSS, "%s: RSS ≤ 300 MiB: peak %.1f MiB (backlog), %.1f MiB (restart); settled %.1f MiB",
		label, mib(r.PeakRSS), mib(r.RestartPeakRSS), mib(r.SettledRSS))
	check(r.RestartSettled <= targetLargeRestart.Seconds() && r.RestartCalls == 0, "%s: restart settled ≤ 30 s with 0 calls: %.1f s, %d calls",
		label, r.RestartSettled, r.RestartCalls)
}
