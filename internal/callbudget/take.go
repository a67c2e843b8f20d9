package callbudget

import (
	"time"
)

// minRetry is the soonest a refused request is told to come back.
const minRetry = time.Millisecond

// Claim is a request asking for one call.
type Claim struct {
	// Requester names who asks (a BankTokenRequest's namespace/name): it holds one place
	// among the waiters, whatever number of times it asks.
	Requester string
	// Due is how urgent the call is: when the token it renews expires (the zero time when
	// none is held). The earlier goes first.
	Due time.Time
}

// Refusal says why a call may not go now; "" when it may.
type Refusal string

const (
	// RefusedPaused: the bank asked the connection to pause (429, Retry-After).
	RefusedPaused Refusal = "Paused"
	// RefusedWindowFull: the connection made its budget's calls in the last interval.
	RefusedWindowFull Refusal = "WindowFull"
	// RefusedSpacing: the connection's last call was too recent (see Options.MaxSpacing).
	RefusedSpacing Refusal = "Spacing"
	// RefusedMoreUrgentFirst: the calls the window has room for are kept for more urgent
	// requests waiting for their turn.
	RefusedMoreUrgentFirst Refusal = "MoreUrgentFirst"
	// RefusedForgotten: a follow-up to a reservation of a connection forgotten since
	// (deleted); the request comes back and finds it gone.
	RefusedForgotten Refusal = "ConnectionForgotten"
)

// Reservation is one call granted: the window is charged for it until Refund says it never
// went out.
type Reservation struct {
	key   Key
	claim Claim
	// at is the time the call was recorded at (Unix nanoseconds).
	at int64
}

// Verdict answers a Take.
type Verdict struct {
	// Granted: the call may go now; Reservation is what it charged.
	Granted     bool
	Reservation Reservation
	// RetryAt is when a refused request should ask again, its turn as far as the budget
	// can tell now.
	RetryAt time.Time
	Reason  Refusal
	// Ahead is how many waiting requests are more urgent than a refused one.
	Ahead int
}

// Take asks for one call through the connection key, under limits (applied at once if they
// changed). The call is granted when the connection is not paused, the window has room for
// it beyond what the fresh waiters more urgent than the claim need, and, for a request that
// holds no place among the waiters, the spacing since the last call has passed; a granted
// requester gives up its place. Otherwise the requester keeps or moves to its place and is
// told its turn. Take never blocks.
func (b *Budgets) Take(key Key, limits Limits, claim Claim, now time.Time) Verdict {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.connection(key, limits)
	c.waiting.sweep(now, b.waiterGrace)
	// Spacing gives newcomers time to take their places; a request that holds one was
	// ranked already, and takes the room at once when its turn comes.
	spacing, gap := c.spacing(b.maxSpacing), time.Duration(0)
	if !c.waiting.holdsPlace(claim.Requester, now) {
		gap = spacing
	}
	c.waiting.remove(claim.Requester)
	available, why := c.availableNow(now, gap)
	if ahead := c.waiting.freshAhead(claim.Due, claim.Requester, now, available); ahead < available {
		return c.grant(key, claim, now)
	}
	if why == "" {
		why = RefusedMoreUrgentFirst
	}
	return c.refuse(claim, now, spacing, why, b.waiterGrace)
}

// TakeFollowUp asks for one more call for the renewal a reservation was granted to: the
// primary grant that follows at once a refresh token the bank refused. The renewal already
// had its turn, so neither the spacing nor the waiters hold it back; the window and a pause
// do, and then the request takes its place among the waiters as Take would place it.
func (b *Budgets) TakeFollowUp(r Reservation, now time.Time) Verdict {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, known := b.connections[r.key]
	if !known || r.key == (Key{}) {
		return Verdict{RetryAt: now.Add(minRetry), Reason: RefusedForgotten}
	}
	why := Refusal("")
	switch {
	case c.paused(now):
		why = RefusedPaused
	case c.log.free(c.windowStart(now)) == 0:
		why = RefusedWindowFull
	default:
		return c.grant(r.key, r.claim, now)
	}
	return c.refuse(r.claim, now, c.spacing(b.maxSpacing), why, b.waiterGrace)
}

// grant charges the window for a call made now.
func (c *connection) grant(key Key, claim Claim, now time.Time) Verdict {
	c.counters.grant()
	return Verdict{Granted: true, Reservation: Reservation{key: key, claim: claim, at: c.log.record(now.UnixNano())}}
}

// refuse puts the claim in its place among the waiters and tells it its turn. Expired
// waiters not yet swept count ahead of it too: at worst its turn is a little late.
func (c *connection) refuse(claim Claim, now time.Time, spacing time.Duration, why Refusal, grace time.Duration) Verdict {
	ahead, _ := c.waiting.position(claim.Due, claim.Requester)
	retryAt := c.turn(ahead, now, spacing)
	c.waiting.register(claim.Requester, claim.Due, retryAt.Add(grace))
	c.counters.throttle()
	return Verdict{RetryAt: retryAt, Reason: why, Ahead: ahead}
}

// Refund gives back a reservation whose call never went out: the decision changed after
// Take, or the call failed before the request was sent (providers.Error.NotSent). A call
// the bank may have seen stays charged, whatever it answered: a 429 counts at the bank.
// It reports whether the window still held the call (the log or the key may have moved on).
func (b *Budgets) Refund(r Reservation) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, known := b.connections[r.key]
	return known && r.key != (Key{}) && c.log.remove(r.at)
}

// Sent moves a granted call to now, the moment before it is sent, and returns the
// reservation that Refund then takes. A bank counts a call from when it arrives: between
// the grant and the sending the caller may write for a while (a refresh token's in-flight
// mark), and a call charged at its grant would leave the window that much before the bank's
// window lets it go, so the next call, granted then, could reach the bank within the
// interval of this one. Moved later only, and only while the log still holds the call.
func (b *Budgets) Sent(r Reservation, now time.Time) Reservation {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, known := b.connections[r.key]
	if !known || r.key == (Key{}) || now.UnixNano() <= r.at || !c.log.remove(r.at) {
		return r
	}
	r.at = c.log.insert(now.UnixNano())
	return r
}

// Withdraw gives up a requester's place among the waiters: it needs no call any more
// (deleted, suspended, renewed through another request's shared grant).
func (b *Budgets) Withdraw(key Key, requester string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, known := b.connections[key]; known {
		c.waiting.remove(requester)
	}
}
