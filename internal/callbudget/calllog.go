package callbudget

import (
	"math"
	"slices"
	"sort"
	"time"
)

// noCall is the time of a call that never was: earlier than any.
const noCall = math.MinInt64

// callLog is a connection's sliding-window log: the times (Unix nanoseconds) of its most
// recent calls, oldest first, at most capacity (the budget's calls) of them.
//
// Only the newest capacity calls matter: a call may go at t exactly when the capacity-th
// newest has left the window, whatever the interval. So the log drops its oldest call when
// it records one beyond capacity, and forgotten remembers the newest time it dropped: every
// call no longer in the log happened at or before it. While the log is full its oldest call
// decides; while it is not (a refund, a larger capacity, a seed that overflowed), forgotten
// bounds the calls it no longer holds, conservatively.
type callLog struct {
	// times is a ring. While it is shorter than capacity, start is 0 and calls are
	// appended; once full, times[start] is the oldest and a new call overwrites it.
	times     []int64
	start     int
	capacity  int
	forgotten int64
}

func newCallLog(capacity int) callLog {
	return callLog{capacity: capacity, forgotten: noCall}
}

func (l *callLog) len() int { return len(l.times) }

// at is the i-th oldest call held.
func (l *callLog) at(i int) int64 { return l.times[(l.start+i)%len(l.times)] }

func (l *callLog) newest() int64 {
	if len(l.times) == 0 {
		return noCall
	}
	return l.at(len(l.times) - 1)
}

// record adds a call at t, or at the newest call's time if t is earlier (a caller's clock
// read before another's took the lock): the log stays sorted, and a call recorded late
// stays in the window longer, never shorter. It returns the time recorded. The caller has
// checked that the call is allowed, so the call a full log drops has left the window.
func (l *callLog) record(t int64) int64 {
	t = max(t, l.newest())
	if len(l.times) < l.capacity {
		l.times = append(l.times, t)
		return t
	}
	l.forgotten = max(l.forgotten, l.times[l.start])
	l.times[l.start] = t
	l.start = (l.start + 1) % len(l.times)
	return t
}

// callsAfter counts the calls held that were made after cut.
func (l *callLog) callsAfter(cut int64) int {
	n := len(l.times)
	return n - sort.Search(n, func(i int) bool { return l.at(i) > cut })
}

// limiting is the time of the call that must leave the window before the j-th next call
// (0 the next, j < capacity) may go: the capacity-th newest once j more are made. When the
// log does not hold that call, forgotten bounds it.
func (l *callLog) limiting(j int) int64 {
	if i := len(l.times) + j - l.capacity; i >= 0 {
		return l.at(i)
	}
	return l.forgotten
}

// free is how many calls may go at once when the window is (cut, now]: those whose limiting
// call was made at or before cut.
func (l *callLog) free(cut int64) int {
	if l.limiting(0) > cut {
		return 0
	}
	// limiting(0) <= cut: the calls not held are out of the window, and every held call
	// made at or before cut frees one more.
	return l.capacity - l.callsAfter(cut)
}

// leaves is when the limiting call of the k-th next call (k < capacity) leaves the window:
// when that call may go, as far as the window is concerned; noCall when nothing limits it.
func (l *callLog) leaves(k int, interval time.Duration) int64 {
	limiting := l.limiting(k)
	if limiting == noCall {
		return noCall
	}
	return limiting + int64(interval)
}

// resize changes the capacity (the budget's calls). A smaller log keeps the newest calls,
// which is exact: the new limit asks only whether its capacity-th newest call has left.
func (l *callLog) resize(capacity int) {
	held := l.linear()
	if drop := len(held) - capacity; drop > 0 {
		l.forgotten = max(l.forgotten, held[drop-1])
		held = held[drop:]
	}
	l.times, l.start, l.capacity = slices.Clip(held), 0, capacity
}

// remove takes back one call recorded at t; false when the log no longer holds it.
func (l *callLog) remove(t int64) bool {
	held := l.linear()
	i := sort.Search(len(held), func(i int) bool { return held[i] > t }) - 1
	if i < 0 || held[i] != t {
		return false
	}
	l.times, l.start = slices.Delete(held, i, i+1), 0
	return true
}

// insert adds a call at t, in its place among the held calls, and returns t. The caller
// made room for it (remove): moving a call later keeps every window within the budget, as
// the calls granted meanwhile counted it already.
func (l *callLog) insert(t int64) int64 {
	held := l.linear()
	i := sort.Search(len(held), func(i int) bool { return held[i] > t })
	l.times, l.start = slices.Insert(held, i, t), 0
	return t
}

// merge adds calls made before the log was kept; those beyond capacity are forgotten.
func (l *callLog) merge(calls []int64) {
	held := append(l.linear(), calls...)
	slices.Sort(held)
	l.times, l.start = held, 0
	l.resize(l.capacity)
}

// linear is a copy of the held calls, oldest first.
func (l *callLog) linear() []int64 {
	held := make([]int64, 0, len(l.times))
	held = append(held, l.times[l.start:]...)
	return append(held, l.times[:l.start]...)
}
