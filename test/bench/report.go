package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// Targets from the scale issue (2 cores, default flags).
const (
	targetReady1000      = 9 * time.Second
	targetReady5000      = 45 * time.Second
	targetWritesPerToken = 2.0
	targetCallsPerToken  = 1.0
	targetRSS1000        = 60 << 20
	targetMemoryRatio    = 1.1
	targetSpreadShare    = 0.10
)

// Targets from the restart-and-backlog issue (2 cores, default flags).
const (
	targetBacklog1000         = 6 * time.Second
	targetBacklog5000         = 30 * time.Second
	targetRestartSettled      = 10 * time.Second
	targetRestartGetsPerToken = 0.05
	targetDueLateness         = 2 * time.Second
)

// checkFunc records one target as met or MISSED.
type checkFunc func(ok bool, format string, a ...any)

// checkPerToken checks the cost of issuing n tokens: at most 2 apiserver writes and exactly
// one upstream call each.
func checkPerToken(check checkFunc, run string, n int, writes writeDelta, calls int64) {
	per := float64(n)
	check(writes.total()/per <= targetWritesPerToken, "%s at most 2 apiserver writes per token: %.2f (%s)", run, writes.total()/per, formatPer(writes.ByResource, per))
	check(float64(calls)/per == targetCallsPerToken, "%s exactly 1 upstream call per token: %.2f", run, float64(calls)/per)
}

// printFunc prints one line of the report.
type printFunc func(format string, a ...any)

// targets are the targets checked so far, each line marked met or MISSED, in order.
type targets []string

func (t *targets) check(ok bool, format string, a ...any) {
	mark := "met   "
	if !ok {
		mark = "MISSED"
	}
	*t = append(*t, mark+"  "+fmt.Sprintf(format, a...))
}

// report prints the results as Markdown: how the bench ran, a section per run asked for,
// then every target checked on the way.
func (b *bench) report(w io.Writer, args []string, res results, took time.Duration) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	var checked targets
	b.reportSetup(p, args, took)
	reportScale(p, checked.check, res.scale)
	reportSpread(p, checked.check, res.spread)
	reportMemory(p, checked.check, res.mem)
	reportBacklog(p, checked.check, res.backlog)
	reportRestart(p, checked.check, res.restart, b.restartArgs())
	reportConnections(p, checked.check, res.conn, b)
	reportSteady(p, checked.check, res.steady)
	reportLarge(p, checked.check, res.large)
	reportTargets(p, checked)
}

// reportSetup prints the heading: the machine, the manager and its flags, the command.
func (b *bench) reportSetup(p printFunc, args []string, took time.Duration) {
	p("")
	p("## bank-token-operator benchmark")
	p("")
	p("- machine: %s; load average at the end %s (shared machines make every number noisy)", machine(), loadavg())
	p("- manager: %s (`%s`)", b.flagsLabel, strings.Join(append([]string{b.managerLabel()}, b.managerArgs...), " "))
	p("- command: `go run ./test/bench %s`; total %s", strings.Join(args, " "), took.Round(time.Second))
	p("")
}

// reportScale prints the scale table: N tokens issued at once, then an idle window.
func reportScale(p printFunc, check checkFunc, runs []scaleResult) {
	if len(runs) == 0 {
		return
	}
	p("| N | all Ready in | tokens/s | apiserver writes per token (beyond the user's creates) | upstream calls per token | manager peak RSS | idle: writes, calls | apply→Secret p50 / p99 |")
	p("|---:|---:|---:|---|---:|---:|---|---:|")
	for _, r := range runs {
		if r.Err != nil {
			p("| %d | failed: %v | | | | | | |", r.N, r.Err)
			continue
		}
		n := float64(r.N)
		p("| %d | %.1f s | %.0f | **%.2f**: %s | %.2f | %.1f MiB | %.0f, %d in %s | %s / %s |",
			r.N, r.ReadySeconds, n/r.ReadySeconds, r.Writes.total()/n, formatPer(r.Writes.ByResource, n),
			float64(r.Calls)/n, mib(r.PeakRSS), r.IdleWrites.total(), r.IdleCalls, r.IdleFor,
			r.P50.Round(time.Millisecond), r.P99.Round(time.Millisecond))
	}
	p("")
	for _, r := range runs {
		if r.Err != nil {
			continue
		}
		p("- N=%d: the bench's creates took %.1f s; manager CPU %.1f s during issuance; of its RSS, %.1f MiB are its binary's mapped pages (RssFile); load %s → %s; failed writes: %s; apiserver's own writes (not the operator's): issuance %s; idle %s",
			r.N, r.CreateSeconds, r.ManagerCPU, mib(r.FileRSS), r.Load[0], r.Load[1], formatPer(r.Writes.Failed, 1),
			formatPer(r.Writes.Other, 1), formatPer(r.IdleWrites.Other, 1))
		n := float64(r.N)
		switch r.N {
		case 1000:
			check(r.ReadySeconds <= targetReady1000.Seconds(), "N=1,000 all Ready within 9 s (≥ 120/s): %.1f s (%.0f/s)", r.ReadySeconds, n/r.ReadySeconds)
			check(r.PeakRSS <= targetRSS1000, "peak RSS ≤ 60 MiB at N=1,000: %.1f MiB", mib(r.PeakRSS))
		case 5000:
			check(r.ReadySeconds <= targetReady5000.Seconds(), "N=5,000 all Ready within 45 s: %.1f s (%.0f/s)", r.ReadySeconds, n/r.ReadySeconds)
		}
		checkPerToken(check, fmt.Sprintf("N=%d", r.N), r.N, r.Writes, r.Calls)
		check(r.IdleWrites.total() == 0 && r.IdleCalls == 0, "N=%d idle %s: 0 writes and 0 calls: %.0f writes (%s), %d calls", r.N, r.IdleFor, r.IdleWrites.total(), formatPer(r.IdleWrites.ByResource, 1), r.IdleCalls)
	}
	p("")
}

// reportSpread prints when tokens issued together were planned to refresh, and when they
// were seen to.
func reportSpread(p printFunc, check checkFunc, r *spreadResult) {
	if r == nil {
		return
	}
	p("### Refresh spread: %d tokens living %s, issued together (renewal window = lifetime/3 = %s)", r.N, r.Lifetime, r.Window)
	p("")
	if r.Err != nil {
		p("failed: %v", r.Err)
		p("")
		return
	}
	p("- issued in %.1f s (issuedAt from first to last: %s)", r.IssueSeconds, r.IssuedSpread)
	p("- planned (status.renewalTime): moved earlier than the nominal renewal point by %.1f%% to %.1f%% of the window (median %.1f%%): spread over **%.1f%%** of the window",
		100*r.JitterMin, 100*r.JitterMax, 100*r.JitterP50, 100*(r.JitterMax-r.JitterMin))
	p("")
	p("  | moved earlier by (share of window) | tokens |")
	p("  |---|---:|")
	for i, c := range r.JitterHist {
		p("  | %2d–%2d%% | %d %s |", 2*i, 2*i+2, c, bar(c, r.N))
	}
	p("")
	p("- observed: %d of %d refreshed (%d token calls while watching, second refreshes of the earliest included); first to last refresh %s (p5–p95 %s–%s); refreshed %.0f%%–%.0f%% of the window before expiry",
		r.Refreshed, r.N, r.RefreshCalls, r.ObservedSpread.Round(100*time.Millisecond),
		r.ObservedP5.Round(100*time.Millisecond), r.ObservedP95.Round(100*time.Millisecond), 100*r.ObservedLeadMin, 100*r.ObsLeadMx)
	if len(r.ObservedHist) > 0 {
		p("")
		p("  | seconds after the first refresh | refreshes |")
		p("  |---:|---:|")
		step := int(r.ObservedBucket / time.Second)
		for i, c := range r.ObservedHist {
			p("  | %d–%d | %d %s |", i*step, (i+1)*step, c, bar(c, r.N))
		}
	}
	check(r.JitterMax-r.JitterMin >= targetSpreadShare, "refreshes of tokens issued together spread over ≥ 10%% of the renewal window: %.1f%% planned; observed refreshes span %s = %.0f%% of the %s window",
		100*(r.JitterMax-r.JitterMin), r.ObservedSpread.Round(100*time.Millisecond), 100*float64(r.ObservedSpread)/float64(r.Window), r.Window)
	p("")
}

// reportMemory prints the manager's memory with unrelated Secrets in the cluster against none.
func reportMemory(p printFunc, check checkFunc, r *memoryResult) {
	if r == nil {
		return
	}
	p("### Memory: %d BankTokenRequests, with %d unrelated %d KiB Secrets against none", r.Tokens, r.Unrelated, r.SecretBytes/1024)
	p("")
	if r.Err != nil {
		p("failed: %v", r.Err)
		p("")
		return
	}
	p("| cluster | manager peak RSS (VmHWM) | RSS after %s |", r.Settle)
	p("|---|---:|---:|")
	p("| no unrelated Secrets | %.1f MiB | %.1f MiB |", mib(r.BaseHWM), mib(r.BaseRSS))
	p("| %d unrelated Secrets in another namespace | %.1f MiB | %.1f MiB |", r.Unrelated, mib(r.WithHWM), mib(r.WithRSS))
	p("| %d unrelated Secrets in the requests' namespace | %.1f MiB | %.1f MiB |", r.Unrelated, mib(r.SameHWM), mib(r.SameRSS))
	elsewhere := float64(r.WithHWM) / float64(r.BaseHWM)
	beside := float64(r.SameHWM) / float64(r.BaseHWM)
	p("")
	p("- ratio %.2f× (peak) with the Secrets in another namespace; the bench created them in %.1f s", elsewhere, r.CreateSeconds)
	p("- ratio %.2f× (peak), %.2f× after %s, with the Secrets in the requests' namespace, whose Secrets the manager watches (names and versions only)",
		beside, float64(r.SameRSS)/float64(r.BaseRSS), r.Settle)
	check(elsewhere <= targetMemoryRatio, "with %d unrelated Secrets in another namespace, peak RSS ≤ 1.1× without: %.2f× (%.1f → %.1f MiB)", r.Unrelated, elsewhere, mib(r.BaseHWM), mib(r.WithHWM))
	check(beside <= targetMemoryRatio, "with %d unrelated Secrets in the requests' namespace, peak RSS ≤ 1.1× without: %.2f× (%.1f → %.1f MiB)", r.Unrelated, beside, mib(r.BaseHWM), mib(r.SameHWM))
	p("")
}

// reportTargets prints every target checked, met or MISSED, as one block to compare across runs.
func reportTargets(p printFunc, checked targets) {
	if len(checked) == 0 {
		return
	}
	p("### Targets")
	p("")
	p("```")
	for _, c := range checked {
		p("%s", c)
	}
	p("```")
}

func bar(c, total int) string {
	if total <= 0 || c <= 0 {
		return ""
	}
	n := (c*40 + total - 1) / total
	return strings.Repeat("█", n)
}

// managerLabel is the manager binary, relative to the module root when inside it.
func (b *bench) managerLabel() string {
	if rel, err := filepath.Rel(b.root, b.managerBin); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return b.managerBin
}

// reportBacklog prints the backlog table: N resources waiting when the manager starts.
func reportBacklog(p printFunc, check checkFunc, runs []backlogResult) {
	if len(runs) == 0 {
		return
	}
	p("### Backlog: N BankTokenRequests created before the manager starts")
	p("")
	p("| N | workers start after | all Ready after the process started | tokens/s | apiserver writes per token | upstream calls per token | reconciles per token | manager peak RSS | manager CPU |")
	p("|---:|---:|---:|---:|---|---:|---:|---:|---:|")
	for _, r := range runs {
		if r.Err != nil {
			p("| %d | failed: %v | | | | | | | |", r.N, r.Err)
			continue
		}
		n := float64(r.N)
		reconciles := fmt.Sprintf("%.2f", r.Reconciles/n)
		if r.ScrapeErr != nil {
			reconciles = fmt.Sprintf("unknown: %v", r.ScrapeErr)
		}
		p("| %d | %.1f s | %.1f s | %.0f | **%.2f**: %s | %.2f | %s | %.1f MiB | %.1f s |",
			r.N, r.StartedAfter.Seconds(), r.ReadySeconds, n/r.ReadySeconds, r.Writes.total()/n,
			formatPer(r.Writes.ByResource, n), float64(r.Calls)/n, reconciles, mib(r.PeakRSS), r.ManagerCPU)
	}
	p("")
	for _, r := range runs {
		if r.Err != nil {
			continue
		}
		p("- N=%d: load %s → %s; reconciles from the manager's own metrics when all were Ready; manager CPU from its start until then; of its RSS, %.1f MiB are its binary's mapped pages (RssFile)",
			r.N, r.Load[0], r.Load[1], mib(r.FileRSS))
	}
	p("")
	for _, r := range runs {
		if r.Err != nil {
			continue
		}
		n := float64(r.N)
		switch r.N {
		case 1000:
			check(r.ReadySeconds <= targetBacklog1000.Seconds(), "backlog N=1,000 all Ready within 6 s of the manager's start: %.1f s (%.0f/s)", r.ReadySeconds, n/r.ReadySeconds)
			check(r.PeakRSS <= targetRSS1000, "backlog N=1,000 peak RSS ≤ 60 MiB: %.1f MiB", mib(r.PeakRSS))
		case 5000:
			check(r.ReadySeconds <= targetBacklog5000.Seconds(), "backlog N=5,000 all Ready within 30 s of the manager's start: %.1f s (%.0f/s)", r.ReadySeconds, n/r.ReadySeconds)
		}
		checkPerToken(check, fmt.Sprintf("backlog N=%d", r.N), r.N, r.Writes, r.Calls)
	}
}

// reportRestart prints the restart table: N valid tokens, kill -9, a new manager.
func reportRestart(p printFunc, check checkFunc, r *restartResult, args []string) {
	if r == nil {
		return
	}
	p("### Restart: %d valid tokens and %d falling due while the manager is down (kill -9, then a new manager)", r.N, r.Due)
	p("")
	if r.Err != nil {
		p("failed: %v", r.Err)
		p("")
		return
	}
	perResource := float64(r.N + r.Due)
	p("| resources | down for | workers start after | settled after | Secret GETs per resource | Secret LIST, WATCH | token calls: not due, due | due renewals late p50 / max | manager peak RSS | manager CPU |")
	p("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
	p("| %d + %d due | %.1f s | %.1f s | %.1f s | **%.2f** (%.0f) | %.0f, %.0f | %d, %d (%d of %d renewed) | %s / %s | %.1f MiB | %.1f s |",
		r.N, r.Due, r.DownFor.Seconds(), r.StartedAfter.Seconds(), r.SettledSeconds,
		r.SecretGets/perResource, r.SecretGets, r.SecretLists, r.SecretWatches,
		r.OtherCalls, r.DueCalls, r.DueRenewed, r.Due,
		r.LateP50.Round(time.Millisecond), r.LateMx.Round(time.Millisecond), mib(r.PeakRSS), r.ManagerCPU)
	p("")
	p("- settled: the new manager's own metrics (polled every 100 ms) showed ≥ %d reconciles (%.0f), an empty queue and no active worker; "+
		"Secret requests are the apiserver's counts from just before the start until then (a WATCH is counted when it ends: open watches are not)", r.N+r.Due, r.Reconciles)
	p("- due tokens lived %s; both managers ran with `%s`; lateness is each due resource's first token call minus the later of its status.renewalTime and the new process's start",
		r.DueLifetime, strings.Join(args, " "))
	p("- apiserver writes until the due renewals were written: %s (others: %s); load %s → %s",
		formatPer(r.Writes.ByResource, 1), formatPer(r.Writes.Other, 1), r.Load[0], r.Load[1])
	p("")
	check(r.OtherCalls == 0, "restart: 0 token calls for the %d resources not due: %d", r.N, r.OtherCalls)
	check(r.DueCalls == r.Due && r.DueRenewed == r.Due, "restart: exactly 1 token call per due resource: %d calls, %d of %d renewed", r.DueCalls, r.DueRenewed, r.Due)
	check(r.SecretGets/perResource <= targetRestartGetsPerToken, "restart: at most 0.05 Secret GETs per resource: %.2f (%.0f)", r.SecretGets/perResource, r.SecretGets)
	check(r.SettledSeconds <= targetRestartSettled.Seconds(), "restart: settled within 10 s of the process start: %.1f s", r.SettledSeconds)
	check(r.DueRenewed == r.Due && r.LateMx <= targetDueLateness, "restart: due renewals at most 2 s late: max %s, p50 %s",
		r.LateMx.Round(time.Millisecond), r.LateP50.Round(time.Millisecond))
}
