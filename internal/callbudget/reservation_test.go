package callbudget

import (
	"slices"
	"testing"
	"time"
)

// A reservation whose call never went out is given back; only once, and only while the
// window holds it.
func TestRefundGivesBackACallThatNeverWentOut(t *testing.T) {
	b := noSpacing(Options{})
	limits := perMinute(2)
	mustGrant(t, b, bankA, limits, Claim{Requester: "a"}, at(0))
	unsent := mustGrant(t, b, bankA, limits, Claim{Requester: "b"}, at(time.Second))
	mustRefuse(t, b, bankA, limits, Claim{Requester: "c"}, at(2*time.Second), RefusedWindowFull)
	if !b.Refund(unsent) {
		t.Fatal("refund refused")
	}
	if b.Refund(unsent) {
		t.Error("the same reservation refunded twice")
	}
	mustGrant(t, b, bankA, limits, Claim{Requester: "c"}, at(2*time.Second))
	if b.Refund(Reservation{}) {
		t.Error("the zero reservation refunded")
	}
}

func TestRefundAfterTheLogMovedOn(t *testing.T) {
	b := noSpacing(Options{})
	limits := perMinute(1)
	old := mustGrant(t, b, bankA, limits, Claim{Requester: "a"}, at(0))
	mustGrant(t, b, bankA, limits, Claim{Requester: "a"}, at(time.Minute))
	if b.Refund(old) {
		t.Error("refunded a call the log no longer holds")
	}
	b.Forget(bankA)
	if b.Refund(old) {
		t.Error("refunded a call of a forgotten connection")
	}
}

// The primary grant after a refused refresh token follows at once: neither the spacing nor
// a more urgent waiter holds it back, the window and a pause do; refused, the request waits
// in its place.
func TestTakeFollowUp(t *testing.T) {
	b := New(Options{})
	limits := perMinute(3)
	renewing := Claim{Requester: "renewing", Due: at(time.Hour)}
	first := mustGrant(t, b, bankA, limits, renewing, at(0))
	mustRefuse(t, b, bankA, limits, Claim{Requester: "urgent", Due: at(0)}, at(0), RefusedSpacing)
	second := b.TakeFollowUp(first, at(time.Millisecond))
	if !second.Granted {
		t.Fatalf("follow-up refused with room in the window: %+v", second)
	}
	if v := b.TakeFollowUp(second.Reservation, at(2*time.Millisecond)); !v.Granted {
		t.Fatalf("second follow-up refused with room in the window: %+v", v)
	}
	v := b.TakeFollowUp(second.Reservation, at(3*time.Millisecond))
	if v.Granted || v.Reason != RefusedWindowFull || v.Ahead != 1 || !v.RetryAt.After(at(time.Minute)) {
		t.Errorf("follow-up beyond the window's calls: %+v; want refused, behind the urgent waiter", v)
	}
	if s := b.Snapshot(bankA, at(3*time.Millisecond)); s.Waiting != 2 {
		t.Errorf("%d waiting, want 2 (urgent, renewing)", s.Waiting)
	}
	b.Pause(bankA, at(3*time.Minute), "RateLimited", at(time.Second))
	if v := b.TakeFollowUp(first, at(2*time.Minute)); v.Granted || v.Reason != RefusedPaused {
		t.Errorf("follow-up while paused: %+v", v)
	}
	if v := b.TakeFollowUp(Reservation{}, at(0)); v.Granted || v.Reason != RefusedForgotten {
		t.Errorf("follow-up to no reservation: %+v", v)
	}
}

// After a restart, the calls the predecessor made in the window (read from the requests'
// status) are charged before the first take; only the first seed counts.
func TestSeedChargesCallsMadeBeforeTheRestart(t *testing.T) {
	b := noSpacing(Options{})
	limits := perMinute(3)
	before := []time.Time{at(-2 * time.Minute), at(-50 * time.Second), at(-40 * time.Second), at(-30 * time.Second), {}}
	if b.Seeded(bankA) {
		t.Fatal("seeded before any seed")
	}
	if !b.Seed(bankA, limits, before, at(0)) || !b.Seeded(bankA) {
		t.Fatal("first seed ignored")
	}
	if b.Seed(bankA, limits, []time.Time{at(-time.Second)}, at(0)) {
		t.Error("second seed counted")
	}
	v := mustRefuse(t, b, bankA, limits, Claim{Requester: "r"}, at(0), RefusedWindowFull)
	if !v.RetryAt.Equal(at(10 * time.Second)) {
		t.Errorf("told %s, want 10s, when the call made at -50s leaves", v.RetryAt.Sub(start))
	}
	if s := b.Snapshot(bankA, at(0)); s.Calls != 3 {
		t.Errorf("%d calls in the window after the seed, want 3", s.Calls)
	}
	mustGrant(t, b, bankA, limits, Claim{Requester: "r"}, at(10*time.Second))
}

func TestForgetDropsTheConnection(t *testing.T) {
	b := noSpacing(Options{})
	limits := perMinute(1)
	mustGrant(t, b, bankA, limits, Claim{Requester: "a"}, at(0))
	b.Pause(bankA, at(time.Hour), "RateLimited", at(0))
	b.Forget(bankA)
	if s := b.Snapshot(bankA, at(time.Second)); s.Calls != 0 || !s.PausedUntil.IsZero() || s.Limits != DefaultLimits() {
		t.Errorf("snapshot of a forgotten connection: %+v", s)
	}
	mustGrant(t, b, bankA, limits, Claim{Requester: "a"}, at(time.Second))
}

func TestSnapshotStatus(t *testing.T) {
	b := New(Options{})
	limits := Limits{Calls: 10, Interval: time.Hour}
	mustGrant(t, b, bankA, limits, Claim{Requester: "a"}, at(0))
	b.Pause(bankA, at(time.Minute), "RateLimited", at(0))
	status := b.Snapshot(bankA, at(time.Second)).Status()
	if status.Calls != 1 || status.Limit != 10 || status.Interval.Duration != time.Hour ||
		status.PausedUntil == nil || !status.PausedUntil.Time.Equal(at(time.Minute)) {
		t.Errorf("status %+v", status)
	}
	if status := b.Snapshot(bankA, at(time.Minute)).Status(); status.PausedUntil != nil {
		t.Errorf("status after the pause: %+v", status)
	}
}

// A call charged at its grant is moved to when it is sent: the next call goes only once the
// sent one has left the window, as the bank counts it; a refund then takes the moved call.
func TestSentMovesTheCallToWhenItIsSent(t *testing.T) {
	b := noSpacing(Options{})
	limits := perMinute(1)
	granted := mustGrant(t, b, bankA, limits, Claim{Requester: "a"}, at(0))
	sent := b.Sent(granted, at(3*time.Second))
	v := mustRefuse(t, b, bankA, limits, Claim{Requester: "b"}, at(time.Minute), RefusedWindowFull)
	if !v.RetryAt.Equal(at(time.Minute + 3*time.Second)) {
		t.Fatalf("the next call is told %s; want a minute after the call was sent", v.RetryAt.Sub(start))
	}
	if again := b.Sent(sent, at(time.Second)); again != sent {
		t.Error("a call was moved earlier")
	}
	if !b.Refund(sent) || b.Refund(granted) {
		t.Fatal("the refund did not take the moved call, or took the grant's time")
	}
	mustGrant(t, b, bankA, limits, Claim{Requester: "b"}, at(time.Minute))
}

// Moving calls later never lets a window hold more than the budget, even while other calls
// are granted before one granted earlier is sent: they counted it already.
func TestSentKeepsEveryWindowWithinTheBudget(t *testing.T) {
	b := noSpacing(Options{})
	limits := perMinute(3)
	type pending struct {
		r      Reservation
		sendAt time.Time
	}
	var waiting []pending
	var calls []time.Time
	sendDue := func(now time.Time) {
		for len(waiting) > 0 && !waiting[0].sendAt.After(now) {
			b.Sent(waiting[0].r, waiting[0].sendAt)
			calls = append(calls, waiting[0].sendAt)
			waiting = waiting[1:]
		}
	}
	for i := range 1200 {
		now := at(time.Duration(i) * time.Second)
		sendDue(now)
		// One requester asking again and again: no waiter's place holds the others back.
		if v := b.Take(bankA, limits, Claim{Requester: "renewals"}, now); v.Granted {
			// Sent up to 9 s after its grant: after calls granted later are.
			delay := time.Duration(i*7%10) * time.Second
			waiting = append(waiting, pending{v.Reservation, now.Add(delay)})
			slices.SortFunc(waiting, func(a, b pending) int { return a.sendAt.Compare(b.sendAt) })
		}
	}
	sendDue(at(time.Hour))
	if len(calls) < 15 {
		t.Fatalf("only %d calls made", len(calls))
	}
	assertWithinBudget(t, calls, limits)
}
