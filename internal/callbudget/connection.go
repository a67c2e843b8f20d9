package callbudget

import (
	"time"
)

// connection is one connection's budget: the log of its calls, the requests waiting for a
// turn, and the pause the bank asked for.
type connection struct {
	limits      Limits
	log         callLog
	waiting     waitingRoom
	pausedUntil time.Time
	pauseReason string
	// seeded: the calls made before this process kept the log were charged (see Seed).
	seeded   bool
	counters connectionCounters
}

func newConnection(limits Limits, counters connectionCounters) *connection {
	limits = limits.valid()
	return &connection{limits: limits, log: newCallLog(limits.Calls), counters: counters}
}

// setLimits applies a spec edit at once: the log keeps the newest calls the new limit needs.
func (c *connection) setLimits(limits Limits) {
	limits = limits.valid()
	if limits == c.limits {
		return
	}
	c.limits = limits
	c.log.resize(limits.Calls)
}

func (c *connection) paused(now time.Time) bool { return now.Before(c.pausedUntil) }

// windowStart is the cut of the window that ends at now: calls made at or before it no
// longer count. Windows are half-open, so a call made at t counts until t+interval.
func (c *connection) windowStart(now time.Time) int64 {
	return now.UnixNano() - int64(c.limits.Interval)
}

// spacing is the least time between two calls of the connection: the budget's average gap
// (interval/calls), at most maxSpacing; 0 when spacing is off.
func (c *connection) spacing(maxSpacing time.Duration) time.Duration {
	if maxSpacing <= 0 {
		return 0
	}
	return min(c.limits.Interval/time.Duration(c.limits.Calls), maxSpacing)
}

// availableNow is how many calls may go at now before any waiter is considered, and, when
// none, why: none while paused, one at most while spacing applies, else as many as the
// window has room for.
func (c *connection) availableNow(now time.Time, spacing time.Duration) (int, Refusal) {
	if c.paused(now) {
		return 0, RefusedPaused
	}
	free := c.log.free(c.windowStart(now))
	switch {
	case free == 0:
		return 0, RefusedWindowFull
	case spacing <= 0:
		return free, ""
	case c.spacedUntil(spacing) > now.UnixNano():
		return 0, RefusedSpacing
	}
	return 1, ""
}

// spacedUntil is when the spacing after the newest call ends.
func (c *connection) spacedUntil(spacing time.Duration) int64 {
	newest := c.log.newest()
	if newest == noCall {
		return noCall
	}
	return newest + int64(spacing)
}

// turn is when the j-th next call (j = 0 the next) may go: after the pause, j spacings
// after the first, and once the window has let its limiting call go. Beyond one window's
// worth of calls, the limiting call is itself one of those to come: the j-th goes a whole
// interval after the (j-calls)-th. The j-th most urgent waiter is told this time, so that
// waiters come back one turn apart, not together.
func (c *connection) turn(j int, now time.Time, spacing time.Duration) time.Time {
	from := now.UnixNano()
	if c.paused(now) {
		from = c.pausedUntil.UnixNano()
	}
	if spacing > 0 {
		from = max(from, c.spacedUntil(spacing))
	}
	// Spacing is at most interval/calls, so a whole interval per cycle covers it too.
	cycles, k := j/c.limits.Calls, j%c.limits.Calls
	t := max(from+int64(k)*int64(spacing), c.log.leaves(k, c.limits.Interval)) + int64(cycles)*int64(c.limits.Interval)
	// A turn is never now: a waiter told now would be put back at once, in a loop.
	return time.Unix(0, max(t, now.UnixNano()+int64(minRetry)))
}

// pause extends the pause to until; a shorter one changes nothing. It reports whether a
// pause began (the connection was not paused), which the pauses counter counts.
func (c *connection) pause(until time.Time, reason string, now time.Time) (began bool) {
	if !until.After(now) || !until.After(c.pausedUntil) {
		return false
	}
	began = !c.paused(now)
	c.pausedUntil, c.pauseReason = until, reason
	return began
}

// seed charges calls made before this process kept the log, once.
func (c *connection) seed(calls []time.Time, now time.Time) bool {
	if c.seeded {
		return false
	}
	c.seeded = true
	cut := c.windowStart(now)
	inWindow := make([]int64, 0, len(calls))
	for _, t := range calls {
		// A time after now (another clock's) counts as now: it must not leave the window late.
		if at := min(t.UnixNano(), now.UnixNano()); !t.IsZero() && at > cut {
			inWindow = append(inWindow, at)
		}
	}
	c.log.merge(inWindow)
	return true
}
