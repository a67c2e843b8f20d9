package callbudget

import (
	"slices"
	"testing"
	"time"
)

func held(l *callLog) []int64 { return l.linear() }

func TestCallLogKeepsTheNewestCallsSorted(t *testing.T) {
	l := newCallLog(3)
	for _, at := range []int64{10, 20, 30, 40, 35} { // 35 comes late: recorded at 40
		l.record(at)
	}
	if got, want := held(&l), []int64{30, 40, 40}; !slices.Equal(got, want) {
		t.Fatalf("held %v, want %v", got, want)
	}
	if l.forgotten != 20 {
		t.Errorf("forgotten %d, want 20 (the newest dropped)", l.forgotten)
	}
	if got := l.callsAfter(30); got != 2 {
		t.Errorf("%d calls after 30, want 2", got)
	}
}

// free counts the calls that may go: with the window (cut, now], a full log frees one per
// held call made at or before cut; a log that is not full adds its empty places only when
// the calls it forgot have left the window.
func TestCallLogFree(t *testing.T) {
	l := newCallLog(3)
	if got := l.free(0); got != 3 {
		t.Errorf("empty log frees %d, want 3", got)
	}
	l.record(10)
	l.record(20)
	l.record(30)
	for cut, want := range map[int64]int{9: 0, 10: 1, 25: 2, 30: 3} {
		if got := l.free(cut); got != want {
			t.Errorf("cut %d: %d free, want %d", cut, got, want)
		}
	}
	l.record(40) // drops 10
	if !l.remove(40) {
		t.Fatal("40 not removed")
	}
	for cut, want := range map[int64]int{9: 0, 10: 1, 20: 2, 30: 3} {
		if got := l.free(cut); got != want {
			t.Errorf("after a removal, cut %d: %d free, want %d", cut, got, want)
		}
	}
}

func TestCallLogLeaves(t *testing.T) {
	l := newCallLog(3)
	l.record(10)
	// Two places empty and nothing forgotten: the next two are not held back by the window.
	for k, want := range []int64{noCall, noCall, 10 + int64(time.Second)} {
		if got := l.leaves(k, time.Second); got != want {
			t.Errorf("leaves(%d) = %d, want %d", k, got, want)
		}
	}
}

func TestCallLogResize(t *testing.T) {
	l := newCallLog(4)
	for _, at := range []int64{10, 20, 30, 40} {
		l.record(at)
	}
	l.resize(2)
	if got := held(&l); !slices.Equal(got, []int64{30, 40}) || l.forgotten != 20 {
		t.Fatalf("shrunk to %v, forgotten %d; want [30 40], 20", got, l.forgotten)
	}
	l.resize(3)
	if got := l.free(19); got != 0 {
		t.Errorf("grown with 20 forgotten, cut 19: %d free, want 0", got)
	}
	if got := l.free(20); got != 1 {
		t.Errorf("grown with 20 forgotten, cut 20: %d free, want 1", got)
	}
	l.record(50)
	l.record(60) // the ring wraps again at its new size
	if got := held(&l); !slices.Equal(got, []int64{40, 50, 60}) {
		t.Errorf("held %v, want [40 50 60]", got)
	}
}

func TestCallLogRemoveOnlyWhatItHolds(t *testing.T) {
	l := newCallLog(2)
	l.record(10)
	l.record(20)
	l.record(30)
	if l.remove(10) {
		t.Error("removed 10, which the log had dropped")
	}
	if l.remove(25) {
		t.Error("removed 25, never recorded")
	}
	if !l.remove(20) || !slices.Equal(held(&l), []int64{30}) {
		t.Errorf("after removing 20: %v", held(&l))
	}
}

func TestCallLogMerge(t *testing.T) {
	l := newCallLog(3)
	l.record(30)
	l.merge([]int64{40, 10, 20})
	if got := held(&l); !slices.Equal(got, []int64{20, 30, 40}) || l.forgotten != 10 {
		t.Errorf("merged %v, forgotten %d; want [20 30 40], 10", got, l.forgotten)
	}
}
