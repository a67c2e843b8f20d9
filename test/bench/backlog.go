package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Backlog: N BankTokenRequests created while no manager runs, then the manager started,
// as after an outage or on a first install into a busy cluster.

type backlogResult struct {
	N            int
	Err          error
	StartedAfter time.Duration // process start -> the controller's workers run (caches synced)
	ReadySeconds float64       // process start -> every Secret holds a token, every resource is Ready
	Writes       writeDelta
	Calls        int64
	PeakRSS      int64
	FileRSS      int64   // of the RSS when all were Ready, the binary's mapped pages (RssFile)
	ManagerCPU   float64 // CPU seconds from process start until all were Ready
	Reconciles   float64 // reconciles the manager's metrics counted until all were Ready
	ScrapeErr    error   // why Reconciles is unknown
	Load         [2]string
}

func (b *bench) runBacklog(ctx context.Context, n int) (res backlogResult) {
	res.N = n
	res.Load[0] = loadavg()
	defer func() { res.Load[1] = loadavg() }()
	b.bank.setLifetime(b.tokenLifetime)
	logf("backlog N=%d: creating %d credentials Secrets and BankTokenRequests; no manager runs", n, n)
	run, err := b.prepare(ctx, runSetup{credentials: n})
	if err != nil {
		res.Err = err
		return res
	}
	defer run.close()
	c := run.cluster
	if _, _, _, err := b.createRequests(ctx, c, benchNamespace, 0, n, b.bank.url); err != nil {
		res.Err = err
		return res
	}
	before, err := b.readCounters(ctx, c)
	if err != nil {
		res.Err = err
		return res
	}
	address, err := freeLoopbackAddress()
	if err != nil {
		res.Err = err
		return res
	}
	logf("backlog N=%d: starting the manager", n)
	start := time.Now()
	if run.manager, err = b.startManager(c, fmt.Sprintf("backlog-%d", n), metricsArgs(address)...); err != nil {
		res.Err = err
		return res
	}
	res.StartedAfter = time.Since(start)
	allReady, err := run.obs.waitAll(ctx, names(n), b.timeout)
	if err != nil {
		res.Err = err
		return res
	}
	res.ReadySeconds = allReady.Sub(start).Seconds()
	res.ManagerCPU = run.manager.CPUSeconds()
	queue, err := scrapeQueue(ctx, &http.Client{Timeout: 2 * time.Second}, address)
	res.Reconciles, res.ScrapeErr = queue.reconciles, err
	logf("backlog N=%d: all Ready %.1fs after the manager started", n, res.ReadySeconds)
	if res.Writes, err = settledWrites(ctx, c, before.requests, nil, 15*time.Second); err != nil {
		res.Err = err
		return res
	}
	res.Calls = b.bank.calls.Load() - before.calls
	res.PeakRSS, _ = run.manager.Memory()
	res.FileRSS = run.manager.FileBackedMemory()
	return res
}
