package callbudget

import (
	"testing"
	"time"
)

// A 429 to one request pauses every request of its connection, and no other connection;
// the pause ends at the time given, and only grows.
func TestPauseStopsEveryCallerOfTheConnectionOnly(t *testing.T) {
	b := New(Options{})
	limits := perMinute(60)
	mustGrant(t, b, bankA, limits, Claim{Requester: "rate-limited"}, at(0))
	until := at(90 * time.Second)
	b.Pause(bankA, until, "RateLimited", at(time.Second))

	var turns []time.Time
	for i := range 5 {
		v := mustRefuse(t, b, bankA, limits, Claim{Requester: name("a", i)}, at(time.Duration(2+i)*time.Second), RefusedPaused)
		turns = append(turns, v.RetryAt)
	}
	// The waiters are told their own turns after the pause, one spacing apart: not a herd
	// at the instant it ends.
	for i, turn := range turns {
		if want := until.Add(time.Duration(i) * DefaultMaxSpacing); !turn.Equal(want) {
			t.Errorf("waiter %d told %s, want %s", i, turn.Sub(start), want.Sub(start))
		}
	}
	mustGrant(t, b, bankB, limits, Claim{Requester: "other-connection"}, at(2*time.Second))

	if got := b.Pause(bankA, at(30*time.Second), "RateLimited", at(10*time.Second)); !got.Equal(until) {
		t.Errorf("a shorter pause moved the end to %s, want %s", got.Sub(start), until.Sub(start))
	}
	mustRefuse(t, b, bankA, limits, Claim{Requester: "a-0"}, until.Add(-time.Nanosecond), RefusedPaused)
	if s := b.Snapshot(bankA, until.Add(-time.Nanosecond)); !s.PausedUntil.Equal(until) || s.PauseReason != "RateLimited" {
		t.Errorf("snapshot during the pause: %+v", s)
	}
	mustGrant(t, b, bankA, limits, Claim{Requester: "a-0"}, until)
	if s := b.Snapshot(bankA, until); !s.PausedUntil.IsZero() {
		t.Errorf("snapshot after the pause still says paused until %s", s.PausedUntil.Sub(start))
	}
}

func TestPauseOnlyExtends(t *testing.T) {
	b := New(Options{})
	b.Pause(bankA, at(time.Minute), "RateLimited", at(0))
	if got := b.Pause(bankA, at(2*time.Minute), "RateLimited", at(time.Second)); !got.Equal(at(2 * time.Minute)) {
		t.Errorf("a longer pause ends at %s, want 2m", got.Sub(start))
	}
	if got := b.Pause(bankA, at(-time.Minute), "RateLimited", at(2*time.Second)); !got.Equal(at(2 * time.Minute)) {
		t.Errorf("a pause in the past moved the end to %s", got.Sub(start))
	}
	mustRefuse(t, b, bankA, perMinute(60), Claim{Requester: "r"}, at(119*time.Second), RefusedPaused)
}

// A call granted before the pause is not taken back; the next waits for the pause.
func TestPauseWaitsForTheWindowToo(t *testing.T) {
	b := noSpacing(Options{})
	limits := perMinute(2)
	fill(t, b, bankA, limits, at(0))
	b.Pause(bankA, at(10*time.Second), "RateLimited", at(0))
	v := mustRefuse(t, b, bankA, limits, Claim{Requester: "r"}, at(time.Second), RefusedPaused)
	if !v.RetryAt.Equal(at(time.Minute)) {
		t.Errorf("told %s: the pause ends at 10s but the window is full until 1m", v.RetryAt.Sub(start))
	}
}
