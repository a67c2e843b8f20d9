package main

import (
	"fmt"
	"strings"
	"time"
)

// Targets from the steady-state issue (2 cores shared with the control plane).
const (
	targetSteadyRate       = 125.0
	targetSteadyFor        = 10 * time.Minute
	targetSteadyLateness   = 2 * time.Second
	targetCPUPerRenewal    = time.Millisecond
	steadyRateShortfallTol = 0.97 // achieved may fall this far short of needed (the window's edges)
)

// reportSteady prints the steady-state table: renewals needed against achieved, how late,
// what expired, and what each renewal cost the apiserver and the manager.
func reportSteady(p printFunc, check checkFunc, r *steadyResult) {
	if r == nil {
		return
	}
	p("### Steady state: %d tokens living %s, renewed for %s (after a warm-up of %s) once all were Ready", r.N, r.Lifetime, r.For, r.Warmup)
	p("")
	if r.Err != nil {
		p("failed: %v", r.Err)
		p("")
		return
	}
	renewals := float64(r.Renewals)
	late50, late99, lateMax := percentile(r.Late, 0.5), percentile(r.Late, 0.99), percentile(r.Late, 1)
	share := r.Period.Seconds() / r.Lifetime.Seconds()
	p("Time is compressed: a token is renewed about %s after issue (%.0f%% of its lifetime), so %d of them need %.0f renewals/s, "+
		"as %.0f tokens living 10 minutes would.", r.Period.Round(100*time.Millisecond), 100*share, r.N, r.needed(), r.needed()*600*share)
	p("")
	p("| renewals/s needed | achieved | late p50 / p99 / max | tokens held expired | expired share of reads | oldest token held | apiserver requests per renewal | writes per renewal | manager CPU per renewal | manager CPU | apiserver CPU | etcd CPU |")
	p("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
	p("| %.0f | **%.1f** | %s / %s / %s | %d | %.2f%% | %s | %.2f: %s | %.2f | %s | %.2f core | %.2f core | %.2f core |",
		r.needed(), r.achieved(), late50.Round(time.Millisecond), late99.Round(time.Millisecond), lateMax.Round(time.Millisecond),
		r.Expiry.tokens, 100*r.Expiry.share, r.Expiry.oldest.Round(time.Second),
		sum(r.Requests)/renewals, formatPer(r.Requests, renewals), r.Writes.total()/renewals,
		perRenewal(r.ManagerCPU, renewals), r.ManagerCPU/r.Window.Seconds(), r.APIServerCPU/r.Window.Seconds(), r.EtcdCPU/r.Window.Seconds())
	p("")
	c := r.Client
	p("- issued in %.1f s; renewing for %s before the window; window %s, %d bank calls; load %s → %s; apiserver CPU per renewal %s",
		r.IssueSeconds, r.Warmup, r.Window.Round(time.Second), r.Renewals, r.Load[0], r.Load[1], perRenewal(r.APIServerCPU, renewals))
	// controller-runtime registers only client-go's request counter, not its rate-limiter or
	// latency histograms: where the workers wait is read from goroutine snapshots instead.
	limiter := "not exposed (controller-runtime registers only the request counter; see the goroutine snapshots)"
	if c.limiterN > 0 {
		limiter = fmt.Sprintf("%s on average (%.1f s in all), request latency %s on average",
			mean(c.limiterSum, c.limiterN).Round(time.Microsecond), c.limiterSum, mean(c.latencySum, c.latencyN).Round(time.Microsecond))
	}
	p("- the manager's own client (client-go metrics): %.2f requests per renewal (%s); time in its rate limiter: %s; "+
		"a reconcile waited %s in the queue and took %s on average (%.2f reconciles per renewal)",
		sum(c.requests)/renewals, formatPer(c.requests, renewals), limiter, mean(c.queueSum, c.queueN).Round(time.Millisecond),
		mean(c.reconcileSum, c.reconN).Round(time.Microsecond), c.reconN/renewals)
	p("- lateness: each bank call minus the renewalTime its request's status held before it; expired: the time output Secrets held a " +
		"token past its issue + lifetime (the bank writes its issue time into the token), over N × window, as a workload reading at random would see")
	p("- over time (every ~%s): %s", sampleStep(r.Samples), formatSamples(r.Samples))
	for _, prof := range r.Profiles {
		if prof.err != nil {
			p("- %s profile: %v", prof.process, prof.err)
			continue
		}
		for _, w := range prof.workers {
			p("- the manager's goroutines: %s", w)
		}
		p("- %s CPU profile (30 s, `go tool pprof -top %s`):", prof.process, prof.path)
		p("")
		p("  ```")
		for _, l := range strings.Split(prof.top, "\n") {
			p("  %s", l)
		}
		p("  ```")
	}
	p("")
	rateOK := r.achieved() >= targetSteadyRate && r.achieved() >= steadyRateShortfallTol*r.needed()
	if r.For >= targetSteadyFor {
		check(rateOK, "steady: 125 renewals/s sustained for 10 minutes: %.1f/s achieved of %.0f/s needed over %s", r.achieved(), r.needed(), r.Window.Round(time.Second))
	} else {
		check(rateOK, "steady: 125 renewals/s sustained over %s only (10 minutes: make bench-steady): %.1f/s achieved of %.0f/s needed", r.Window.Round(time.Second), r.achieved(), r.needed())
	}
	check(len(r.Late) > 0 && lateMax <= targetSteadyLateness, "steady: renewals at most 2 s late: max %s (p99 %s)", lateMax.Round(time.Millisecond), late99.Round(time.Millisecond))
	check(r.Expiry.tokens == 0, "steady: 0 tokens expired unrenewed: %d (%.2f%% of reads, oldest token %s)", r.Expiry.tokens, 100*r.Expiry.share, r.Expiry.oldest.Round(time.Second))
	check(r.ManagerCPU/renewals <= targetCPUPerRenewal.Seconds(), "steady: ≤ 1 ms manager CPU per renewal: %s", perRenewal(r.ManagerCPU, renewals))
}

func perRenewal(cpuSeconds, renewals float64) string {
	if renewals == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f ms", 1000*cpuSeconds/renewals)
}

func sampleStep(s []steadySample) time.Duration {
	if len(s) < 2 {
		return 0
	}
	return (s[len(s)-1].at - s[0].at) / time.Duration(len(s)-1) * time.Duration(samplesEvery(s)) / time.Second * time.Second
}

// samplesEvery keeps at most about 12 samples in the report.
func samplesEvery(s []steadySample) int { return max(1, (len(s)+11)/12) }

func formatSamples(s []steadySample) string {
	var parts []string
	for i := 0; i < len(s); i += samplesEvery(s) {
		x := s[i]
		parts = append(parts, fmt.Sprintf("%s: RSS %.0f MiB, queue %.0f, workers busy %.0f, calls %d",
			x.at.Round(time.Second), mib(x.rss), x.depth, x.active, x.calls))
	}
	return strings.Join(parts, "; ")
}
