package main

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
)

// Steady state: N tokens living L, issued, then renewed for a warm-up and for T after it. Time
// is compressed: a token renewed at about 2/3 of its lifetime (minus up to a fifth of the
// window as jitter) is renewed every ~0.63 L, so N = 5,000 tokens living 60 s need about
// 130 renewals a second, what 50,000 tokens living 10 minutes need.

type steadyResult struct {
	N             int
	Err           error
	Lifetime, For time.Duration
	IssueSeconds  float64
	Period        time.Duration // mean planned renewal period (renewalTime − issuedAt)
	Warmup        time.Duration // renewing, not measured, after the last Ready
	Window        time.Duration // measured: from the end of the warm-up to the end
	Renewals      int64         // bank calls in the window
	Late          []time.Duration
	Expiry        expiryTally
	Requests      map[string]float64 // the operator's apiserver requests (not WATCH/LIST), by "VERB resource"
	Writes        writeDelta
	ManagerCPU    float64 // CPU seconds in the window
	APIServerCPU  float64
	EtcdCPU       float64
	Samples       []steadySample
	Client        clientDelta
	Profiles      []profileTop
	Load          [2]string
}

// needed is the renewals a second N tokens renewed every Period need.
func (r steadyResult) needed() float64 { return float64(r.N) / r.Period.Seconds() }

// achieved is the renewals a second the bank saw in the window.
func (r steadyResult) achieved() float64 { return float64(r.Renewals) / r.Window.Seconds() }

// steadySample is the manager seen at one moment of the window.
type steadySample struct {
	at            time.Duration // since the window started
	rss           int64
	depth, active float64
	calls         int64 // bank calls so far in the window
}

func (b *bench) runSteady(ctx context.Context) (res steadyResult) {
	res.N, res.Lifetime, res.For = b.steadyN, b.steadyLifetime, b.steadyFor
	res.Load[0] = loadavg()
	defer func() { res.Load[1] = loadavg() }()
	address, err := freeLoopbackAddress()
	if err != nil {
		res.Err = err
		return res
	}
	pprofAddress, err := freeLoopbackAddress()
	if err != nil {
		res.Err = err
		return res
	}
	b.bank.setLifetime(b.steadyLifetime)
	defer b.bank.setLifetime(b.tokenLifetime)
	logf("steady N=%d: creating %d credentials Secrets", res.N, res.N)
	args := metricsArgs(address)
	if managerHasFlag(b.managerBin, "pprof-bind-address") {
		args = append(args, "--pprof-bind-address="+pprofAddress)
	} else {
		pprofAddress = "" // an older manager (main before this scenario): no profiles
	}
	run, err := b.prepare(ctx, runSetup{credentials: res.N, managerLabel: fmt.Sprintf("steady-%d", res.N), history: true,
		managerArgs: args})
	if err != nil {
		res.Err = err
		return res
	}
	defer run.close()
	logf("steady N=%d: issuing tokens that live %s", res.N, res.Lifetime)
	issued, err := b.issue(ctx, run, res.N)
	if err != nil {
		res.Err = err
		return res
	}
	res.IssueSeconds = issued.allReady.Sub(issued.first).Seconds()
	res.Period = meanPlannedPeriod(run.obs.snapshotStatus())
	logf("steady N=%d: all Ready after %.1fs; renewing every %s on average (%.0f/s needed); warming up for %s, then watching for %s",
		res.N, res.IssueSeconds, res.Period.Round(100*time.Millisecond), res.needed(), b.steadyWarmup, res.For)
	if res.Err = sleepUntil(ctx, time.Now().Add(b.steadyWarmup)); res.Err != nil {
		return res
	}
	res.Warmup = b.steadyWarmup
	res.Err = b.measureSteady(ctx, run, &res, address, pprofAddress)
	return res
}

// measureSteady watches the window: counters before and after, the manager sampled every
// 15 s (each scrape of its metrics costs it ~0.1 s of CPU at N=5,000: a Prometheus scraping
// every 30 s is closer to 15 s than to 5), profiles of the manager and the apiserver in its middle.
func (b *bench) measureSteady(ctx context.Context, run *benchRun, res *steadyResult, address, pprofAddress string) error {
	hc := &http.Client{Timeout: 2 * time.Minute}
	apiserver, etcd := controlPlanePIDs()
	start := time.Now()
	before, err := b.readCounters(ctx, run.cluster)
	if err != nil {
		return err
	}
	clientBefore, err := scrapeClient(ctx, hc, address)
	if err != nil {
		return err
	}
	cpu0, api0, etcd0 := run.manager.CPUSeconds(), harness.CPUSecondsOf(apiserver), harness.CPUSecondsOf(etcd)

	profiled := make(chan []profileTop, 1)
	go func() { profiled <- b.profileSteady(ctx, run.cluster, pprofAddress, res.For) }()
	end := start.Add(res.For)
	for now := time.Now(); now.Before(end); now = time.Now() {
		q, _ := scrapeQueue(ctx, hc, address)
		_, rss := run.manager.Memory()
		res.Samples = append(res.Samples, steadySample{at: now.Sub(start), rss: rss, depth: q.depth, active: q.activeWorkers,
			calls: b.bank.calls.Load() - before.calls})
		if err := sleepUntil(ctx, minTime(end, now.Add(15*time.Second))); err != nil {
			return err
		}
	}
	res.Window = time.Since(start)
	res.ManagerCPU = run.manager.CPUSeconds() - cpu0
	res.APIServerCPU, res.EtcdCPU = harness.CPUSecondsOf(apiserver)-api0, harness.CPUSecondsOf(etcd)-etcd0
	after, err := b.readCounters(ctx, run.cluster)
	if err != nil {
		return err
	}
	clientAfter, err := scrapeClient(ctx, hc, address)
	if err != nil {
		return err
	}
	res.Client = clientAfter.minus(clientBefore)
	res.Writes = diffWrites(before.requests, after.requests, nil)
	res.Requests = operatorRequests(before.requests, after.requests)
	res.Renewals = after.calls - before.calls
	res.Late = b.lateness(run.obs, start, after.at)
	res.Expiry = run.obs.expiry(start, after.at, res.Lifetime)
	res.Profiles = <-profiled
	return nil
}

// lateness is, for each bank call between from and to, the call's time minus the renewal
// time its request's status planned (the last plan seen before the call).
func (b *bench) lateness(obs *observer, from, to time.Time) []time.Duration {
	obs.mu.Lock()
	defer obs.mu.Unlock()
	var late []time.Duration
	for client, calls := range b.bank.clientCallsSince(from) {
		i, err := strconv.Atoi(client[len("client-"):])
		if err != nil {
			continue
		}
		plans := obs.plans[btrName(i)]
		for _, c := range calls {
			if c.After(to) {
				continue
			}
			var plan *planSeen
			for k := range plans {
				if plans[k].seen.Before(c) {
					plan = &plans[k]
				}
			}
			if plan != nil {
				late = append(late, c.Sub(plan.renewAt))
			}
		}
	}
	return late
}

// expiryTally is how much of the window output Secrets held expired tokens.
type expiryTally struct {
	expiredTime time.Duration // summed over Secrets
	tokens      int           // tokens held past their expiry in the window
	oldest      time.Duration // the oldest token an output Secret held in the window
	share       float64       // expiredTime over N × window: the share of reads that got an expired token
}

// expiry tallies, from every token each output Secret held, the time between from and to
// in which it held one past its expiry (issued + lifetime).
func (o *observer) expiry(from, to time.Time, lifetime time.Duration) expiryTally {
	o.mu.Lock()
	defer o.mu.Unlock()
	var t expiryTally
	for _, held := range o.tokens {
		for k, h := range held {
			until := to
			if k+1 < len(held) {
				until = minTime(to, held[k+1].seen)
			}
			if !until.After(from) || h.issued.IsZero() {
				continue
			}
			t.oldest = max(t.oldest, until.Sub(h.issued))
			if expired := until.Sub(later(h.issued.Add(lifetime), from)); expired > 0 {
				t.expiredTime += expired
				t.tokens++
			}
		}
	}
	if n := len(o.tokens); n > 0 {
		t.share = float64(t.expiredTime) / float64(time.Duration(n)*to.Sub(from))
	}
	return t
}

// meanPlannedPeriod is the mean of renewalTime − issuedAt over the statuses.
func meanPlannedPeriod(statuses map[string]tokensv1alpha1.BankTokenRequestStatus) time.Duration {
	var total time.Duration
	n := 0
	for _, st := range statuses {
		if st.RenewalTime == nil || st.IssuedAt == nil {
			continue
		}
		total += st.RenewalTime.Sub(st.IssuedAt.Time)
		n++
	}
	if n == 0 {
		return time.Hour
	}
	return total / time.Duration(n)
}

// operatorRequests are the requests on the operator's resources between two scrapes, every
// verb but the long-running LIST and WATCH, by "VERB resource".
func operatorRequests(before, after requestCounts) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if k.Verb == "WATCH" || k.Verb == "LIST" || !operatorResource(k.Resource) {
			continue
		}
		if d := v - before[k]; d > 0 {
			out[k.Verb+" "+k.Resource] += d
		}
	}
	return out
}

// controlPlanePIDs finds this process's kube-apiserver and etcd (one control plane runs at a time).
func controlPlanePIDs() (apiserver, etcd int) {
	for _, c := range harness.ChildProcesses() {
		switch c.Name {
		case "kube-apiserver":
			apiserver = c.PID
		case "etcd":
			etcd = c.PID
		}
	}
	return apiserver, etcd
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// managerHasFlag says whether the manager binary's -help lists the flag.
func managerHasFlag(bin, flag string) bool {
	out, _ := exec.Command(bin, "-help").CombinedOutput()
	return strings.Contains(string(out), "-"+flag+" ")
}

// profilePath is where a profile of one process is written.
func (b *bench) profilePath(name string) string {
	return filepath.Join(b.workDir, name+".pprof")
}
