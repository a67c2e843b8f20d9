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
)

// Reservation is one call granted: the window is charged for it until Refund says it never
// went out.
type Reservation struct {
	key Key
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
		c.counters.grant()
		return Verdict{Granted: true, Reservation: Reservation{key: key, at: c.log.record(now.UnixNano())}}
	}
	if why == "" {
		why = RefusedMoreUrgentFirst
	}
	// Expired waiters not yet swept count here too: at worst a turn a little late.
	ahead, _ := c.waiting.position(claim.Due, claim.Requester)
	retryAt := c.turn(ahead, now, spacing)
	c.waiting.register(claim.Requester, claim.Due, retryAt.Add(b.waiterGrace))
	c.counters.throttle()
	return Verdict{RetryAt: retryAt, Reason: why, Ahead: ahead}
}

// TakeFollowUp grants one more call to the request a reservation was granted to, for the
// same renewal: the primary grant that follows at once a refresh token the bank refused.
// The renewal already had its turn, so neither the spacing nor the waiters hold it back;
// the window and a pause do. Refused, the request comes back through Take.
func (b *Budgets) TakeFollowUp(r Reservation, now time.Time) (Reservation, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, known := b.connections[r.key]
	if !known || c.paused(now) || c.log.free(c.windowStart(now)) == 0 {
		return Reservation{}, false
	}
	c.counters.grant()
	return Reservation{key: r.key, at: c.log.record(now.UnixNano())}, true
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

// Withdraw gives up a requester's place among the waiters: it needs no call any more
// (deleted, suspended, renewed through another request's shared grant).
func (b *Budgets) Withdraw(key Key, requester string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, known := b.connections[key]; known {
		c.waiting.remove(requester)
	}
}
