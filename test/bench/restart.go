package main

import (
	"context"
	"fmt"
	"time"
)

// Restart: N valid tokens and a few that fall due while the manager is down; kill -9,
// start a new manager and see what it costs to settle and how late the due renewals are.

type restartResult struct {
	N, Due          int
	Err             error
	DueLifetime     time.Duration
	DownFor         time.Duration // kill -> the new process started
	StartedAfter    time.Duration // process start -> the controller's workers run
	SettledSeconds  float64       // process start -> every resource reconciled, queue empty
	Reconciles      float64       // reconciles counted by the new manager when it settled
	SecretGets      float64       // from just before the start until settled
	SecretLists     float64
	SecretWatches   float64
	Writes          writeDelta // from just before the start until the due renewals were written
	OtherCalls      int        // token calls for resources that were not due
	DueCalls        int        // token calls for the due resources
	DueRenewed      int        // due resources called at least once
	LateP50, LateMx time.Duration
	PeakRSS         int64
	ManagerCPU      float64 // CPU seconds from process start until settled
	Load            [2]string
}

// restartArgs are the manager flags of both managers in the restart run: a renewal floor
// short enough that a token living DueLifetime falls due within seconds of its issue.
func (b *bench) restartArgs() []string {
	return []string{fmt.Sprintf("--min-renewal-interval=%s", b.restartMinRenewal)}
}

func (b *bench) runRestart(ctx context.Context) (res restartResult) {
	res.N, res.Due, res.DueLifetime = b.restartN, b.restartDue, b.restartDueLifetime
	total := res.N + res.Due
	res.Load[0] = loadavg()
	defer func() { res.Load[1] = loadavg() }()
	b.bank.setLifetime(b.tokenLifetime)
	logf("restart: creating %d credentials Secrets", total)
	run, err := b.prepare(ctx, runSetup{credentials: total})
	if err != nil {
		res.Err = err
		return res
	}
	defer run.close()
	renewals, killedAt, err := b.issueThenKill(ctx, run, res.N, res.Due)
	if err != nil {
		res.Err = err
		return res
	}
	latest := killedAt
	for _, t := range renewals {
		latest = later(latest, t)
	}
	logf("restart: killed; waiting %s until the %d due renewals have fallen due", time.Until(latest).Round(time.Second), res.Due)
	if err := sleepUntil(ctx, latest.Add(500*time.Millisecond)); err != nil {
		res.Err = err
		return res
	}
	res.DownFor = time.Since(killedAt)
	res.Err = b.measureRestart(ctx, run, &res, renewals)
	return res
}

// issueThenKill issues n long-lived tokens, then due tokens that live DueLifetime, and
// kills the manager with SIGKILL. It returns each due resource's status.renewalTime.
func (b *bench) issueThenKill(ctx context.Context, run *benchRun, n, due int) (map[string]time.Time, time.Time, error) {
	first, err := b.startManager(run.cluster, "restart-first", b.restartArgs()...)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer first.Stop(managerStopTimeout)
	logf("restart: issuing %d tokens that live %s", n, b.tokenLifetime)
	if _, err := b.issue(ctx, run, n); err != nil {
		return nil, time.Time{}, err
	}
	logf("restart: issuing %d tokens that live %s", due, b.restartDueLifetime)
	b.bank.setLifetime(b.restartDueLifetime)
	_, _, _, err = b.createRequests(ctx, run.cluster, benchNamespace, n, due, b.bank.url)
	if err == nil {
		_, err = run.obs.waitAll(ctx, nameRange(n, due), b.timeout)
	}
	// What the due resources get when they are renewed lives long: nothing falls due twice.
	b.bank.setLifetime(b.tokenLifetime)
	if err != nil {
		return nil, time.Time{}, err
	}
	if err := first.Kill(); err != nil {
		return nil, time.Time{}, err
	}
	killedAt := time.Now()
	renewals, err := dueRenewalTimes(run.obs, nameRange(n, due), killedAt)
	return renewals, killedAt, err
}

// dueRenewalTimes reads the renewal times the killed manager wrote; each must lie after the
// kill, or the due resources were renewed before it and nothing fell due during the restart.
func dueRenewalTimes(obs *observer, due []string, killedAt time.Time) (map[string]time.Time, error) {
	status := obs.snapshotStatus()
	out := make(map[string]time.Time, len(due))
	for _, name := range due {
		st := status[name]
		if st.RenewalTime == nil {
			return nil, fmt.Errorf("%s is Ready without a renewalTime", name)
		}
		if !st.RenewalTime.After(killedAt) {
			return nil, fmt.Errorf("%s fell due at %s, before the kill at %s: a longer --restart-due-lifetime is needed on this machine",
				name, st.RenewalTime.Format(time.TimeOnly), killedAt.Format(time.TimeOnly))
		}
		out[name] = st.RenewalTime.Time
	}
	return out, nil
}

// measureRestart starts the new manager and measures it until it settled and renewed
// what fell due.
func (b *bench) measureRestart(ctx context.Context, run *benchRun, res *restartResult, renewals map[string]time.Time) error {
	c := run.cluster
	before, err := b.readCounters(ctx, c)
	if err != nil {
		return err
	}
	address, err := freeLoopbackAddress()
	if err != nil {
		return err
	}
	logf("restart: starting the new manager")
	start := time.Now()
	if run.manager, err = b.startManager(c, "restart-second", append(b.restartArgs(), metricsArgs(address)...)...); err != nil {
		return err
	}
	res.StartedAfter = time.Since(start)
	settledAt, queue, err := waitDrained(ctx, address, res.N+res.Due, b.timeout)
	if err != nil {
		return err
	}
	res.SettledSeconds, res.Reconciles = settledAt.Sub(start).Seconds(), queue.reconciles
	res.ManagerCPU = run.manager.CPUSeconds()
	logf("restart: settled %.1fs after the new manager started", res.SettledSeconds)
	after, err := c.scrapeRequests(ctx)
	if err != nil {
		return err
	}
	res.SecretGets = requestsBetween(before.requests, after, "GET", "secrets")
	res.SecretLists = requestsBetween(before.requests, after, "LIST", "secrets")
	res.SecretWatches = requestsBetween(before.requests, after, "WATCH", "secrets")
	return b.measureDueRenewals(ctx, run, res, renewals, start, before)
}

// measureDueRenewals waits until every due resource was renewed (or the timeout passed),
// then counts the token calls since start and how late each due renewal was.
func (b *bench) measureDueRenewals(ctx context.Context, run *benchRun, res *restartResult, renewals map[string]time.Time, start time.Time, before counters) error {
	dueClients := make(map[string]string, len(renewals)) // client_id -> resource
	for i := res.N; i < res.N+res.Due; i++ {
		dueClients[fmt.Sprintf("client-%d", i)] = btrName(i)
	}
	deadline := time.Now().Add(b.timeout)
	for b.renewedCount(dueClients, start) < len(dueClients) && time.Now().Before(deadline) {
		if err := sleepUntil(ctx, time.Now().Add(100*time.Millisecond)); err != nil {
			return err
		}
	}
	var err error
	if res.Writes, err = settledWrites(ctx, run.cluster, before.requests, nil, 15*time.Second); err != nil {
		return err
	}
	var late []time.Duration
	for client, times := range b.bank.clientCallsSince(start) {
		name, due := dueClients[client]
		if !due {
			res.OtherCalls += len(times)
			continue
		}
		res.DueCalls += len(times)
		res.DueRenewed++
		late = append(late, times[0].Sub(later(renewals[name], start)))
	}
	res.LateP50, res.LateMx = percentile(late, 0.5), percentile(late, 1)
	res.PeakRSS, _ = run.manager.Memory()
	return nil
}

func (b *bench) renewedCount(clients map[string]string, since time.Time) int {
	n := 0
	for client := range b.bank.clientCallsSince(since) {
		if _, ok := clients[client]; ok {
			n++
		}
	}
	return n
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func sleepUntil(ctx context.Context, t time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(t)):
		return nil
	}
}
