package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Targets from the connections issue.
const (
	// targetSharedCallsPerScope: a shared grant is one chain, renewed by one call a round.
	// One more is tolerated because what is claimed is a cost that does not grow with the
	// number of consumers; a second call in a round (say, a consumer's reconcile racing the
	// grant's own renewal) is waste to look at, not a broken claim. Three are.
	targetSharedCallsPerScope = 2.0
	// targetPerRequestCallShare: with a grant each, a round is one call per request. The
	// round is delimited so that each is renewed once, so only a retry could add one.
	targetPerRequestCallShare = 0.02
)

// reportConnections prints the connection run: a table of the set-ups measured over
// renewal rounds, the default-budget set-up apart, then the notes and the targets.
func reportConnections(p printFunc, check checkFunc, runs []connectionResult, b *bench) {
	if len(runs) == 0 {
		return
	}
	p("### Connection: %d requests on one connection against %d inline (tokens live %s)", b.connN, b.connN, b.connLifetime)
	p("")
	reportRoundTable(p, runs)
	reportBudgetTable(p, runs)
	p("- each set-up on a control plane and manager of its own; the requests spread over %d namespaces (bench-tenant-*), which the ClusterBankConnection admits by name; "+
		"its credentials Secret only in %s (the manager's `--cluster-connection-namespace`); inline requests have a credentials Secret each beside them; every request asks for scope %q",
		b.connNamespaces, connectionSecretsNamespace, benchScope)
	p("- the connections of (b) and (c) have callBudget %d calls per %s, the most the CRD admits, so that the budget does not pace the comparison", highBudgetCalls, highBudgetInterval)
	p("- a renewal round: the window opens once issuance's writes have settled, before any token is due, and closes when every request's output Secret has held %d new token(s) "+
		"and the apiserver's write count has stopped moving; calls, writes and CPU are counted in it and divided by its %d round(s); it includes the quiet time before the first renewal",
		b.connRounds, b.connRounds)
	for _, r := range runs {
		reportConnectionNotes(p, r)
	}
	p("")
	for _, r := range runs {
		checkConnection(check, r)
	}
}

func reportRoundTable(p printFunc, runs []connectionResult) {
	if !slices.ContainsFunc(runs, func(r connectionResult) bool { return !r.Setup.defaultBudget }) {
		return
	}
	p("| set-up | all Ready in | issuance per request: bank calls, apiserver writes | bank calls per round | apiserver writes per round | per request per round: calls, writes | manager CPU per round | round: window, renewals first→last |")
	p("|---|---:|---|---:|---|---|---:|---:|")
	for _, r := range runs {
		if r.Setup.defaultBudget {
			continue
		}
		if r.Err != nil {
			p("| %s | failed: %v | | | | | | |", r.Setup.label, r.Err)
			continue
		}
		n, rd := float64(r.N), r.Round
		calls, writes := rd.per(float64(rd.Calls)), rd.per(rd.Writes.total())
		p("| %s | %.1f s | %.3f, **%.2f**: %s | **%.0f** | **%.0f**: %s | %.3f, %.2f | %.2f s | %s, %s |",
			r.Setup.label, r.ReadySeconds, float64(r.IssueCalls)/n, r.IssueWrites.total()/n, formatPer(r.IssueWrites.ByResource, n),
			calls, writes, formatPer(rd.Writes.ByResource, float64(rd.Rounds)), calls/n, writes/n,
			rd.per(rd.CPU), rd.Window.Round(time.Second), rd.RenewalSpan.Round(100*time.Millisecond))
	}
	p("")
}

func reportBudgetTable(p printFunc, runs []connectionResult) {
	for _, r := range runs {
		if !r.Setup.defaultBudget {
			continue
		}
		if r.Err != nil {
			p("%s: failed: %v", r.Setup.label, r.Err)
			p("")
			continue
		}
		bp := r.Budget
		p("| set-up | budget | watched after the creates | bank calls | most calls in any %s | shortest span of %d calls | Ready with a token at the end |", bp.Interval, bp.Limit+1)
		p("|---|---:|---:|---:|---:|---:|---:|")
		p("| %s | %d per %s | %s | %d | **%d** | %s | %d of %d |", r.Setup.label, bp.Limit, bp.Interval, bp.Watch, bp.Calls, bp.MostInInterval,
			spanOrNone(bp.SpanOfOneMore), bp.Ready, r.N)
		p("")
	}
}

// reportConnectionNotes prints what a set-up's row does not hold: the load, failed writes,
// the apiserver's own writes, and a round that was not what it should be.
func reportConnectionNotes(p printFunc, r connectionResult) {
	if r.Err != nil || r.Setup.defaultBudget {
		return
	}
	rd := r.Round
	p("- %s: load %s → %s; manager CPU %.1f s during issuance; failed writes: issuance %s, rounds %s; apiserver's own writes (not the operator's) in the rounds: %s",
		r.Setup.label, r.Load[0], r.Load[1], r.IssueCPU, formatPer(r.IssueWrites.Failed, 1), formatPer(rd.Writes.Failed, 1), formatPer(rd.Writes.Other, 1))
	p("  - %s", managerCountsLine(float64(r.N), r.IssueManager, rd))
	if rd.MostPerSecret > rd.Rounds || rd.Early > 0 {
		p("  - the round was not clean: one Secret got %d new tokens in %d round(s); %d new tokens came before the window opened", rd.MostPerSecret, rd.Rounds, rd.Early)
	}
}

func checkConnection(check checkFunc, r connectionResult) {
	if r.Err != nil {
		check(false, "connection %s: the run failed: %v", r.Setup.label, r.Err)
		return
	}
	n := float64(r.N)
	switch {
	case r.Setup.defaultBudget:
		bp := r.Budget
		check(bp.MostInInterval <= bp.Limit, "connection %s: at most %d bank calls in any %s while %d requests start: %d (%d calls in %s; the shortest span of %d: %s)",
			r.Setup.label, bp.Limit, bp.Interval, r.N, bp.MostInInterval, bp.Calls, bp.Watch, bp.Limit+1, spanOrNone(bp.SpanOfOneMore))
	case r.Setup.sharing == tokensv1alpha1.GrantSharingShared:
		calls := r.Round.per(float64(r.Round.Calls))
		check(calls <= targetSharedCallsPerScope, "connection %s: 1 bank call per renewal round for its one scope (≤ 2 tolerated, a constant): %.0f for %d consumers",
			r.Setup.label, calls, r.N)
	case r.Setup.sharing == tokensv1alpha1.GrantSharingPerRequest:
		calls := r.Round.per(float64(r.Round.Calls))
		check(math.Abs(calls-n) <= targetPerRequestCallShare*n, "connection %s: ~N bank calls per renewal round (N=%d, ±2%%): %.0f", r.Setup.label, r.N, calls)
	}
}

// managerCountsLine says what the manager's metrics counted per request: reconciles, and
// token calls a connection's budget refused for now.
func managerCountsLine(n float64, issue managerCounts, rd roundResult) string {
	if err := errors.Join(issue.err, rd.Manager.err); err != nil {
		return fmt.Sprintf("the manager's metrics could not be read: %v", err)
	}
	return fmt.Sprintf("per request, from the manager's metrics: reconciles %.2f at issuance, %.2f per round; token calls the budget refused for now (banktoken_connection_throttled_total) %.2f at issuance, %.2f per round",
		issue.reconciles/n, rd.per(rd.Manager.reconciles)/n, issue.throttled/n, rd.per(rd.Manager.throttled)/n)
}

func spanOrNone(d time.Duration) string {
	if d == 0 {
		return "fewer calls"
	}
	return d.Round(time.Millisecond).String()
}
