package callbudget

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// start is the simulations' t=0; any date far from the Unix epoch does.
var start = time.Date(2031, 3, 14, 9, 0, 0, 0, time.UTC)

var (
	bankA = Key{Kind: "BankConnection", Namespace: "payments", Name: "bank-a"}
	bankB = Key{Kind: "ClusterBankConnection", Name: "bank-b"}
)

func perMinute(calls int) Limits { return Limits{Calls: calls, Interval: time.Minute} }

// at is start plus d.
func at(d time.Duration) time.Time { return start.Add(d) }

// busiestWindow is the most calls in any window [t, t+interval). The busiest window starts
// at a call, so trying each call's is enough.
func busiestWindow(calls []time.Time, interval time.Duration) (most int, from time.Time) {
	sorted := slices.SortedFunc(slices.Values(calls), time.Time.Compare)
	end := 0
	for i, first := range sorted {
		for end < len(sorted) && sorted[end].Before(first.Add(interval)) {
			end++
		}
		if end-i > most {
			most, from = end-i, first
		}
	}
	return most, from
}

func assertWithinBudget(t *testing.T, calls []time.Time, limits Limits) {
	t.Helper()
	if most, from := busiestWindow(calls, limits.Interval); most > limits.Calls {
		t.Fatalf("%d calls in the window of %s from %s; the budget is %d", most, limits.Interval, from.Sub(start), limits.Calls)
	}
}

func mustGrant(t *testing.T, b *Budgets, key Key, limits Limits, claim Claim, now time.Time) Reservation {
	t.Helper()
	v := b.Take(key, limits, claim, now)
	if !v.Granted {
		t.Fatalf("%s at %s: refused (%s, retry at %s), want granted", claim.Requester, now.Sub(start), v.Reason, v.RetryAt.Sub(start))
	}
	return v.Reservation
}

func mustRefuse(t *testing.T, b *Budgets, key Key, limits Limits, claim Claim, now time.Time, want Refusal) Verdict {
	t.Helper()
	v := b.Take(key, limits, claim, now)
	if v.Granted {
		t.Fatalf("%s at %s: granted, want refused (%s)", claim.Requester, now.Sub(start), want)
	}
	if v.Reason != want {
		t.Fatalf("%s at %s: refused for %s, want %s", claim.Requester, now.Sub(start), v.Reason, want)
	}
	if !v.RetryAt.After(now) {
		t.Fatalf("%s at %s: told to retry at %s, not after now", claim.Requester, now.Sub(start), v.RetryAt.Sub(start))
	}
	return v
}

// fill spends a connection's window at now, spacing off, with requesters "fill-i".
func fill(t *testing.T, b *Budgets, key Key, limits Limits, now time.Time) {
	t.Helper()
	for i := range limits.Calls {
		mustGrant(t, b, key, limits, Claim{Requester: name("fill", i)}, now)
	}
}

func name(prefix string, i int) string { return fmt.Sprintf("%s-%04d", prefix, i) }

// noSpacing is budgets whose calls go as fast as the window lets them.
func noSpacing(opts Options) *Budgets {
	opts.MaxSpacing = -1
	return New(opts)
}
