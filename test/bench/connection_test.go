package main

import (
	"strings"
	"testing"
	"time"
)

func TestMostInWindowCountsTheBusiestWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	// Unsorted on purpose: the bank records calls from concurrent handlers.
	times := []time.Time{at(70), at(0), at(10), at(59.9), at(60), at(61), at(65)}
	// [10, 70) holds 10, 59.9, 60, 61, 65; a window ending at 60 excludes 60 itself.
	if got := mostInWindow(times, time.Minute); got != 5 {
		t.Errorf("mostInWindow = %d, want 5", got)
	}
	if got := mostInWindow(nil, time.Minute); got != 0 {
		t.Errorf("mostInWindow(nil) = %d, want 0", got)
	}
}

func TestShortestSpanOfKCalls(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	times := []time.Time{at(30), at(0), at(10), at(12)}
	if got := shortestSpan(times, 2); got != 2*time.Second {
		t.Errorf("shortestSpan(2) = %s, want 2s", got)
	}
	if got := shortestSpan(times, 4); got != 30*time.Second {
		t.Errorf("shortestSpan(4) = %s, want 30s", got)
	}
	if got := shortestSpan(times, 5); got != 0 {
		t.Errorf("shortestSpan(5) = %s, want 0 (fewer calls)", got)
	}
}

func TestParseConnectionSetupsKeepsTheRunOrder(t *testing.T) {
	got, err := parseConnectionSetups("shared, inline,per-request")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range got {
		keys = append(keys, s.key)
	}
	if want := "inline per-request shared"; strings.Join(keys, " ") != want {
		t.Errorf("set-ups %q, want %q", strings.Join(keys, " "), want)
	}
	if _, err := parseConnectionSetups("inline,bogus"); err == nil {
		t.Error("an unknown set-up was accepted")
	}
}

func TestRefreshesAfterCountsOnlyTheWindow(t *testing.T) {
	o := newObserver()
	t0 := time.Now()
	o.reissued["a"] = []time.Time{t0.Add(-time.Second), t0.Add(time.Second)}
	o.reissued["b"] = []time.Time{t0.Add(2 * time.Second), t0.Add(3 * time.Second)}
	tally := o.refreshesAfter([]string{"a", "b", "c"}, t0, 1)
	if tally.done != 2 || tally.most != 2 || tally.before != 1 {
		t.Errorf("done %d, most %d, before %d; want 2, 2, 1", tally.done, tally.most, tally.before)
	}
	if span := tally.last.Sub(tally.first); span != 2*time.Second {
		t.Errorf("renewals span %s, want 2s", span)
	}
}
