package callbudget

import (
	"testing"
	"time"
)

// A more urgent waiter that never comes back (its request was deleted, or renewed another
// way) holds the others back until its turn plus the grace, and no longer.
func TestWaiterThatNeverComesBackExpires(t *testing.T) {
	grace := 10 * time.Second
	b := New(Options{WaiterGrace: grace})
	limits := perMinute(1)
	mustGrant(t, b, bankA, limits, Claim{Requester: "first"}, at(0))
	urgent := Claim{Requester: "vanishes", Due: at(time.Minute)}
	patient := Claim{Requester: "patient", Due: at(time.Hour)}
	turn := mustRefuse(t, b, bankA, limits, urgent, at(time.Second), RefusedWindowFull).RetryAt
	if !turn.Equal(at(time.Minute)) {
		t.Fatalf("the urgent waiter was told %s, want 1m", turn.Sub(start))
	}
	mustRefuse(t, b, bankA, limits, patient, at(2*time.Second), RefusedWindowFull)

	// The window has room from 1m on; it is kept for the urgent waiter while it is fresh.
	for _, now := range []time.Time{turn, turn.Add(grace / 2), turn.Add(grace)} {
		v := mustRefuse(t, b, bankA, limits, patient, now, RefusedMoreUrgentFirst)
		if v.Ahead != 1 || !v.RetryAt.After(now) {
			t.Errorf("at %s: %d ahead, told %s", now.Sub(start), v.Ahead, v.RetryAt.Sub(start))
		}
	}
	mustGrant(t, b, bankA, limits, patient, turn.Add(grace+time.Nanosecond))
	if s := b.Snapshot(bankA, turn.Add(grace+time.Nanosecond)); s.Waiting != 0 {
		t.Errorf("%d waiting after the expiry and the grant, want 0", s.Waiting)
	}
}

// Withdraw frees the place at once.
func TestWithdrawnWaiterHoldsNoOneBack(t *testing.T) {
	b := New(Options{})
	limits := perMinute(1)
	mustGrant(t, b, bankA, limits, Claim{Requester: "first"}, at(0))
	mustRefuse(t, b, bankA, limits, Claim{Requester: "deleted", Due: at(time.Minute)}, at(time.Second), RefusedWindowFull)
	mustRefuse(t, b, bankA, limits, Claim{Requester: "patient", Due: at(time.Hour)}, at(time.Minute), RefusedMoreUrgentFirst)
	b.Withdraw(bankA, "deleted")
	mustGrant(t, b, bankA, limits, Claim{Requester: "patient", Due: at(time.Hour)}, at(time.Minute))
}

// A waiter granted leaves the room; one whose urgency changed moves to its new place.
func TestWaiterPlaces(t *testing.T) {
	b := noSpacing(Options{})
	limits := perMinute(1)
	mustGrant(t, b, bankA, limits, Claim{Requester: "first"}, at(0))
	for i, due := range []time.Duration{3 * time.Hour, time.Hour, 2 * time.Hour} {
		mustRefuse(t, b, bankA, limits, Claim{Requester: name("w", i), Due: at(due)}, at(time.Second), RefusedWindowFull)
	}
	// w-0 now renews a token that expires first: it moves to the head.
	if v := mustRefuse(t, b, bankA, limits, Claim{Requester: name("w", 0), Due: at(time.Minute)}, at(2*time.Second), RefusedWindowFull); v.Ahead != 0 {
		t.Errorf("w-0 moved to the head has %d ahead", v.Ahead)
	}
	if v := mustRefuse(t, b, bankA, limits, Claim{Requester: name("w", 2), Due: at(2 * time.Hour)}, at(3*time.Second), RefusedWindowFull); v.Ahead != 2 {
		t.Errorf("w-2 has %d ahead, want 2 (w-0, w-1)", v.Ahead)
	}
	mustGrant(t, b, bankA, limits, Claim{Requester: name("w", 0), Due: at(time.Minute)}, at(time.Minute))
	if s := b.Snapshot(bankA, at(time.Minute)); s.Waiting != 2 {
		t.Errorf("%d waiting, want 2", s.Waiting)
	}
}

// The k-th waiter is told the k-th turn: one window's calls over the window's freeing, then
// whole intervals on.
func TestWaitersAreToldTheirOwnTurns(t *testing.T) {
	b := noSpacing(Options{})
	limits := perMinute(3)
	for i := range 3 {
		mustGrant(t, b, bankA, limits, Claim{Requester: name("first", i)}, at(time.Duration(i)*time.Second))
	}
	want := []time.Duration{time.Minute, time.Minute + time.Second, time.Minute + 2*time.Second, 2 * time.Minute, 2*time.Minute + time.Second}
	for i, turn := range want {
		v := mustRefuse(t, b, bankA, limits, Claim{Requester: name("w", i), Due: at(time.Duration(i) * time.Hour)}, at(10*time.Second), RefusedWindowFull)
		if !v.RetryAt.Equal(at(turn)) {
			t.Errorf("waiter %d told %s, want %s", i, v.RetryAt.Sub(start), turn)
		}
	}
}
