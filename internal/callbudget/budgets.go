package callbudget

import (
	"sync"
	"time"

	"k8s.io/utils/clock"
)

const (
	// DefaultWaiterGrace is how long past its turn a refused request keeps its place. A
	// requeue comes back late when the workers are busy; one that never comes back holds
	// the others back no longer than this.
	DefaultWaiterGrace = 10 * time.Second
	// DefaultMaxSpacing bounds the gap a newcomer (a request holding no place among the
	// waiters) leaves after a connection's last call. A burst's requests reach Take over a
	// few hundred milliseconds (each reads its Secrets first): the gap lets them take their
	// places, so the most urgent get the budget, not the first to arrive.
	DefaultMaxSpacing = 250 * time.Millisecond
	// DefaultPause is how long a connection pauses after a 429 that gave no Retry-After.
	DefaultPause = time.Minute
)

// Options tune the budgets; the zero value is the defaults.
type Options struct {
	// Metrics receives the connections' series; nil: none.
	Metrics *Metrics
	// WaiterGrace: see DefaultWaiterGrace; 0 picks it.
	WaiterGrace time.Duration
	// MaxSpacing: see DefaultMaxSpacing; 0 picks it, a negative value turns spacing off.
	// The gap kept is the budget's average gap (interval/calls) when that is shorter, so
	// spacing never lowers the budget.
	MaxSpacing time.Duration
	// Clock is read by the paused gauge when it is scraped; nil: the real clock. Every
	// decision takes its time from the caller.
	Clock clock.PassiveClock
}

// Budgets are the call budgets of every connection, by key. They are safe for concurrent
// use: one mutex guards them all, held for microseconds, never across a call to a bank.
type Budgets struct {
	mu          sync.Mutex
	connections map[Key]*connection
	waiterGrace time.Duration
	maxSpacing  time.Duration
	metrics     *Metrics
	clock       clock.PassiveClock
}

// New is an empty set of budgets; connections are added as they are first named.
func New(opts Options) *Budgets {
	b := &Budgets{
		connections: map[Key]*connection{},
		waiterGrace: opts.WaiterGrace,
		maxSpacing:  opts.MaxSpacing,
		metrics:     opts.Metrics,
		clock:       opts.Clock,
	}
	if b.waiterGrace <= 0 {
		b.waiterGrace = DefaultWaiterGrace
	}
	if b.maxSpacing == 0 {
		b.maxSpacing = DefaultMaxSpacing
	}
	if b.clock == nil {
		b.clock = clock.RealClock{}
	}
	b.metrics.watch(b)
	return b
}

// connection is key's budget under limits, created on first use; b.mu is held.
func (b *Budgets) connection(key Key, limits Limits) *connection {
	c, known := b.connections[key]
	if !known {
		c = newConnection(limits, b.metrics.countersFor(key))
		b.connections[key] = c
		return c
	}
	c.setLimits(limits)
	return c
}

// SetLimits applies a connection's limits (a spec edit) before any request asks.
func (b *Budgets) SetLimits(key Key, limits Limits) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.connection(key, limits)
}

// Pause stops every call through the connection until until: the bank answered 429 or
// Retry-After to one of its requests (DefaultPause when it did not say how long). A pause
// is only ever extended, never shortened. It returns when the pause ends.
func (b *Budgets) Pause(key Key, until time.Time, reason string, now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.known(key)
	if c.pause(until, reason, now) {
		c.counters.pauseBegun()
	}
	return c.pausedUntil
}

// Seed charges the calls made through the connection before this process kept its log
// (read from the requests' status after a restart), so that a new leader does not spend
// again a budget its predecessor spent. Only the first seed of a key counts; it reports
// whether this one did.
func (b *Budgets) Seed(key Key, limits Limits, calls []time.Time, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.connection(key, limits).seed(calls, now)
}

// Seeded says whether the connection's earlier calls were charged.
func (b *Budgets) Seeded(key Key) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, known := b.connections[key]
	return known && c.seeded
}

// Snapshot is the connection's budget at now; the default limits and nothing else for a
// connection never named.
func (b *Budgets) Snapshot(key Key, now time.Time) Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, known := b.connections[key]; known {
		return c.snapshot(now)
	}
	return Snapshot{Limits: DefaultLimits()}
}

// Forget drops a connection's budget and its series: the connection was deleted.
func (b *Budgets) Forget(key Key) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.connections, key)
	b.metrics.forget(key)
}

// known is key's budget, created with the default limits until its own are set; b.mu is held.
func (b *Budgets) known(key Key) *connection {
	if c, ok := b.connections[key]; ok {
		return c
	}
	return b.connection(key, DefaultLimits())
}

// pausedNow lists the connections with whether each is paused now, for the paused gauge.
func (b *Budgets) pausedNow() map[Key]bool {
	now := b.clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	paused := make(map[Key]bool, len(b.connections))
	for key, c := range b.connections {
		paused[key] = c.paused(now)
	}
	return paused
}
