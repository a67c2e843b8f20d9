package callbudget

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkTake measures a take on a connection whose window is full: granted (each take
// comes as the oldest call leaves, so the log drops one and records one) and refused
// (the requester keeps its place among waiters, alone or behind 1,000 more urgent ones).
//
//	go test -run '^$' -bench BenchmarkTake -benchmem ./internal/callbudget/
func BenchmarkTake(b *testing.B) {
	for _, calls := range []int{60, 10_000} {
		limits := perMinute(calls)
		gap := limits.Interval / time.Duration(calls)
		b.Run(fmt.Sprintf("window=%d/granted", calls), func(b *testing.B) {
			budgets := fullWindow(limits, gap)
			now := at(limits.Interval)
			b.ReportAllocs()
			for b.Loop() {
				if !budgets.Take(bankA, limits, Claim{Requester: "r"}, now).Granted {
					b.Fatal("refused")
				}
				now = now.Add(gap)
			}
		})
		for _, waiting := range []int{0, 1000} {
			b.Run(fmt.Sprintf("window=%d/refused/waiters=%d", calls, waiting), func(b *testing.B) {
				budgets := fullWindow(limits, gap)
				now := at(limits.Interval - time.Nanosecond)
				for i := range waiting {
					budgets.Take(bankA, limits, Claim{Requester: name("waiter", i), Due: at(time.Duration(i))}, now)
				}
				claim := Claim{Requester: "r", Due: at(time.Hour)}
				b.ReportAllocs()
				for b.Loop() {
					if budgets.Take(bankA, limits, claim, now).Granted {
						b.Fatal("granted")
					}
				}
			})
		}
	}
}

// fullWindow is budgets whose window under limits was filled a gap apart from start.
func fullWindow(limits Limits, gap time.Duration) *Budgets {
	budgets := New(Options{MaxSpacing: -1, WaiterGrace: time.Hour})
	for i := range limits.Calls {
		budgets.Take(bankA, limits, Claim{Requester: "fill"}, at(time.Duration(i)*gap))
	}
	return budgets
}
