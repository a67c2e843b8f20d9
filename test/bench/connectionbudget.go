package main

import (
	"context"
	"slices"
	"time"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// The default-budget set-up: N requests created at once on a connection left at its
// default budget (60 calls a minute), as after a credentials rotation or a restart with
// everything due. At that pace 1,000 tokens take about 17 minutes, so the run watches for
// --connection-budget-watch only and counts what the bank saw: never more than the budget
// in any window of its interval. Its tokens live long (--token-lifetime), so that every call
// seen is a first issue.

// budgetPacing is what the bank saw during the watch.
type budgetPacing struct {
	Watch          time.Duration
	Limit          int           // the budget's calls per Interval
	Interval       time.Duration // the budget's window
	Calls          int           // token calls during the watch
	MostInInterval int           // the most calls in any window of Interval
	// SpanOfOneMore is the shortest time holding Limit+1 calls at the bank: above Interval
	// when the budget held; how far below it says by how much it did not (the budget counts
	// a call when sent, the bank when it arrives).
	SpanOfOneMore time.Duration
	Ready         int // requests Ready with a token in their Secret at the end
}

func (b *bench) measureBudgetPacing(ctx context.Context, run *benchRun, setup connectionSetup, tenants []string) (budgetPacing, error) {
	interval, err := time.ParseDuration(tokensv1alpha1.DefaultCallBudgetInterval)
	if err != nil {
		return budgetPacing{}, err
	}
	p := budgetPacing{Watch: b.connBudgetWatch, Limit: tokensv1alpha1.DefaultCallBudgetCalls, Interval: interval}
	first := time.Now()
	if err := b.createConnectionRequests(ctx, run.cluster, setup, tenants); err != nil {
		return p, err
	}
	logf("connection %s: created %d requests; watching the bank for %s", setup.key, b.connN, p.Watch)
	if err := sleepUntil(ctx, first.Add(p.Watch)); err != nil {
		return p, err
	}
	calls := b.bank.callTimesSince(first)
	p.Calls, p.MostInInterval = len(calls), mostInWindow(calls, interval)
	p.SpanOfOneMore = shortestSpan(calls, p.Limit+1)
	_, _, p.Ready, _ = run.obs.progress(names(b.connN))
	return p, nil
}

// mostInWindow is the most of times that fall in any window [t, t+window).
func mostInWindow(times []time.Time, window time.Duration) int {
	sorted := slices.SortedFunc(slices.Values(times), func(a, b time.Time) int { return a.Compare(b) })
	most, from := 0, 0
	for to, t := range sorted {
		for t.Sub(sorted[from]) >= window {
			from++
		}
		most = max(most, to-from+1)
	}
	return most
}

// shortestSpan is the shortest time from the first to the last of any k of times; 0 when
// there are fewer than k.
func shortestSpan(times []time.Time, k int) time.Duration {
	if k < 1 || len(times) < k {
		return 0
	}
	sorted := slices.SortedFunc(slices.Values(times), func(a, b time.Time) int { return a.Compare(b) })
	shortest := sorted[k-1].Sub(sorted[0])
	for i := 1; i+k-1 < len(sorted); i++ {
		shortest = min(shortest, sorted[i+k-1].Sub(sorted[i]))
	}
	return shortest
}
