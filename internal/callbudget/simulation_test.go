package callbudget

import (
	"container/heap"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// A restart, or a rotation of the connection's credentials, with 1,000 requests on one
// connection all due at once: each comes back at the RetryAt it is told, a little late as a
// requeue is, for 30 simulated minutes.
func TestThousandRequestsDueAtOnce(t *testing.T) {
	limits := perMinute(60)
	for _, tc := range []struct {
		name     string
		seed     uint64
		lateness time.Duration
		// vanishing requests never come back once refused: deleted, or renewed another way.
		vanishing float64
	}{
		{"requeues on time", 1, 100 * time.Millisecond, 0},
		{"requeues on time, another order", 2, 100 * time.Millisecond, 0},
		{"busy workers", 3, 2 * time.Second, 0},
		{"a tenth never come back", 4, 100 * time.Millisecond, 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := simulate(New(Options{}), limits, 1000, tc.seed, tc.lateness, tc.vanishing, 30*time.Minute)
			granted := sim.grantTimes()
			assertWithinBudget(t, granted, limits)
			if served, want := len(sim.grants), len(sim.due)-len(sim.vanished); served != want {
				t.Fatalf("%d of %d requests served in 30 minutes", served, want)
			}
			assertMostUrgentFirst(t, sim, limits)
			assertNoHerd(t, sim)
			last := granted[len(granted)-1].Sub(start)
			busiest, _ := busiestWindow(granted, limits.Interval)
			t.Logf("busiest window %d calls; last call at %s; %d takes for %d calls", busiest, last, sim.takes, len(sim.grants))
			// 1,000 calls at 60 a minute need 16m40s; lateness may cost a little more.
			if last > 18*time.Minute {
				t.Errorf("the last grant came at %s: the budget was left unused", last)
			}
		})
	}
}

// assertMostUrgentFirst: the first call goes to whoever asked first, before the others have
// taken their places. After it, a request is granted only while the room left exceeds the
// more urgent requests still waiting: so the first window's calls go to the 60 most urgent
// but one, and every request is served within one window's worth of calls of its place in
// the order of urgency (it may go before a more urgent one when the room covers both).
func assertMostUrgentFirst(t *testing.T, sim *simulation, limits Limits) {
	t.Helper()
	var byUrgency []int
	for i := range sim.due {
		if !sim.vanished[i] {
			byUrgency = append(byUrgency, i)
		}
	}
	slices.SortFunc(byUrgency, func(a, b int) int { return sim.due[a].Compare(sim.due[b]) })
	place := make([]int, len(sim.due))
	for p, r := range byUrgency {
		place[r] = p
	}
	inFirstWindow := 0
	for _, g := range sim.grants[:limits.Calls] {
		if place[g.request] < limits.Calls {
			inFirstWindow++
		}
	}
	if inFirstWindow < limits.Calls-1 {
		t.Errorf("the first %d calls went to %d of the %d most urgent requests, want at least %d",
			limits.Calls, inFirstWindow, limits.Calls, limits.Calls-1)
	}
	for i, g := range sim.grants[1:] {
		if p := place[g.request]; p >= i+1+limits.Calls || i+1 > p+limits.Calls {
			t.Fatalf("call %d went to the request %d-th in urgency: more than a window's worth of calls away", i+1, p)
		}
	}
}

// assertNoHerd: after the first second, when every request asked, the requests come back
// spread over their turns. Told all the same time, 1,000 would come back together at every
// freed call; told their turns, a few come back in a second. A request asks three or four
// times: once with all the others, once early (it took its place before more urgent ones
// arrived, so it was told too early a turn), once at its turn, and sometimes once more when
// a request ahead of it came back late.
func assertNoHerd(t *testing.T, sim *simulation) {
	t.Helper()
	var later []time.Time
	for _, take := range sim.takeTimes {
		if take.After(start.Add(time.Second)) {
			later = append(later, take)
		}
	}
	most, from := busiestWindow(later, time.Second)
	if most > 50 {
		t.Errorf("%d takes in the second from %s: a herd", most, from.Sub(start))
	}
	t.Logf("busiest second after the first: %d takes, from %s", most, from.Sub(start))
	if perRequest := float64(sim.takes) / float64(len(sim.due)); perRequest > 5 {
		t.Errorf("%.1f takes per request: waiters are not told their turn", perRequest)
	}
}

type grant struct {
	at      time.Time
	request int
}

type simulation struct {
	due       []time.Time
	vanished  map[int]bool
	grants    []grant
	takes     int
	takeTimes []time.Time
}

func (s *simulation) grantTimes() []time.Time {
	times := make([]time.Time, len(s.grants))
	for i, g := range s.grants {
		times[i] = g.at
	}
	return times
}

// simulate runs n requests due at start, whose tokens expire in a random order over the
// next hour, against one connection. All ask at start, in a random order; a refused one
// asks again at its RetryAt plus up to lateness, except the vanishing share, which never
// asks again.
func simulate(b *Budgets, limits Limits, n int, seed uint64, lateness time.Duration, vanishing float64, until time.Duration) *simulation {
	rng := rand.New(rand.NewPCG(seed, seed))
	sim := &simulation{due: make([]time.Time, n), vanished: map[int]bool{}}
	var pending arrivals
	doomed := map[int]bool{}
	for i, expiry := range rng.Perm(n) {
		sim.due[i] = start.Add(time.Duration(expiry) * 3 * time.Second)
		doomed[i] = rng.Float64() < vanishing
	}
	for _, i := range rng.Perm(n) {
		heap.Push(&pending, arrival{at: start, request: i, order: pending.Len()})
	}
	for pending.Len() > 0 {
		a := heap.Pop(&pending).(arrival)
		if a.at.After(start.Add(until)) {
			break
		}
		sim.takes++
		sim.takeTimes = append(sim.takeTimes, a.at)
		v := b.Take(bankA, limits, Claim{Requester: name("request", a.request), Due: sim.due[a.request]}, a.at)
		if v.Granted {
			sim.grants = append(sim.grants, grant{at: a.at, request: a.request})
			continue
		}
		if doomed[a.request] {
			sim.vanished[a.request] = true
			continue
		}
		late := time.Duration(rng.Int64N(int64(lateness)))
		heap.Push(&pending, arrival{at: v.RetryAt.Add(late), request: a.request, order: a.order})
	}
	return sim
}

// arrivals are the requests' next Takes, earliest first; order breaks ties as a queue would.
type arrival struct {
	at      time.Time
	request int
	order   int
}

type arrivals []arrival

func (a arrivals) Len() int { return len(a) }
func (a arrivals) Less(i, j int) bool {
	if c := a[i].at.Compare(a[j].at); c != 0 {
		return c < 0
	}
	return a[i].order < a[j].order
}
func (a arrivals) Swap(i, j int) { a[i], a[j] = a[j], a[i] }
func (a *arrivals) Push(x any)   { *a = append(*a, x.(arrival)) }
func (a *arrivals) Pop() any {
	old := *a
	x := old[len(old)-1]
	*a = old[:len(old)-1]
	return x
}
