package callbudget

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Many workers taking, refunding, following up and pausing on one connection at once, while
// the metrics are scraped and another connection comes and goes: the calls charged never
// exceed the budget in any window. Run with -race.
func TestConcurrentTakesNeverExceedTheBudget(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxSpacing time.Duration
	}{{"spacing", 100 * time.Microsecond}, {"no spacing", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			metrics := NewMetrics()
			registry := prometheus.NewRegistry()
			if err := metrics.Register(registry); err != nil {
				t.Fatal(err)
			}
			// The simulated run lasts a third of a second: waiters expire in milliseconds.
			b := New(Options{Metrics: metrics, MaxSpacing: tc.maxSpacing, WaiterGrace: 2 * time.Millisecond})
			limits := Limits{Calls: 20, Interval: 50 * time.Millisecond}
			calls := hammer(b, limits, 32, 1000, func() { _, _ = registry.Gather() })
			assertWithinBudget(t, calls, limits)
			if most, _ := busiestWindow(calls, limits.Interval); most < limits.Calls {
				t.Fatalf("at most %d calls in a window: the test never filled one", most)
			}
			t.Logf("%d calls charged", len(calls))
		})
	}
}

// hammer runs workers goroutines of takes each on bankA, and returns the times of the calls
// charged. The clock is shared and moves on a little at every take, so that windows pass;
// a worker's time may be older than another's that took the lock first, as in a process.
func hammer(b *Budgets, limits Limits, workers, takes int, scrape func()) []time.Time {
	var clock atomic.Int64
	var mu sync.Mutex
	var calls []time.Time
	charge := func(r Reservation) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, time.Unix(0, r.at))
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range takes {
				now := start.Add(time.Duration(clock.Add(rng.Int64N(int64(20 * time.Microsecond)))))
				// Each requester keeps its urgency, as a token's expiry does.
				requester := w*10 + i%10
				claim := Claim{Requester: name("worker", requester), Due: at(time.Duration(requester*7919%1000) * time.Millisecond)}
				v := b.Take(bankA, limits, claim, now)
				sideline(b, rng, now, scrape)
				if !v.Granted {
					continue
				}
				if rng.IntN(10) == 0 && b.Refund(v.Reservation) {
					continue
				}
				charge(v.Reservation)
				if rng.IntN(10) == 0 {
					if next := b.TakeFollowUp(v.Reservation, now); next.Granted {
						charge(next.Reservation)
					}
				}
			}
		})
	}
	wg.Wait()
	return calls
}

// sideline is what else happens meanwhile: pauses, snapshots, scrapes, another connection.
func sideline(b *Budgets, rng *rand.Rand, now time.Time, scrape func()) {
	switch rng.IntN(200) {
	case 0:
		b.Pause(bankA, now.Add(2*time.Millisecond), "RateLimited", now)
	case 1:
		b.Snapshot(bankA, now)
	case 2:
		scrape()
	case 3:
		b.Take(bankB, perMinute(5), Claim{Requester: "other"}, now)
	case 4:
		b.Forget(bankB)
	}
}
