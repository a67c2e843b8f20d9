package issuermetadata

import (
	"context"
	"sync"
	"time"
)

// DefaultInterval is how long a document is used before it is read again.
const DefaultInterval = time.Hour

// Retry backoff after a failed read: from firstRetry, doubling, at most maxRetry (and never
// beyond the interval).
const (
	firstRetry = 5 * time.Second
	maxRetry   = 5 * time.Minute
)

// Cache holds the last good document of each issuer (per key: the issuer and the TLS
// inputs it was read over), reads it again once Interval has passed or Invalidate asked,
// and after a failed read keeps serving the last good one while it retries with backoff.
// It is safe for concurrent use; reads of one key are serialised, reads of different keys
// are not.
type Cache struct {
	// Interval is how long a document is used before it is read again; DefaultInterval when zero.
	Interval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	mu sync.Mutex // held across a read, so that one key is read once at a time

	metadata *Metadata
	readAt   time.Time
	// invalidated asks for a read at the next Get, backoff or not.
	invalidated bool
	lastErr     error
	failedAt    time.Time
	failures    int
	usedAt      time.Time
}

// Result is what the cache holds for a key after Get.
type Result struct {
	// Metadata is the last good document; nil when none was ever read.
	Metadata *Metadata
	// ReadAt is when Metadata was read.
	ReadAt time.Time
	// Err is the last read's failure when it failed (Metadata is then older, or nil), nil
	// after a good read.
	Err error
	// FailedAt is when the last read failed; RetryAt when the next read may be made.
	FailedAt, RetryAt time.Time
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Cache) interval() time.Duration {
	if c.Interval > 0 {
		return c.Interval
	}
	return DefaultInterval
}

func (c *Cache) entry(key string, now time.Time) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*entry{}
	}
	// Forget keys unused for two intervals (a rotated certificate's, a deleted request's).
	for k, e := range c.entries {
		if k != key && now.Sub(e.usedAt) > 2*c.interval() && e.mu.TryLock() {
			delete(c.entries, k)
			e.mu.Unlock()
		}
	}
	e := c.entries[key]
	if e == nil {
		e = &entry{}
		c.entries[key] = e
	}
	e.usedAt = now
	return e
}

// Get returns the key's document, reading it with read when there is none yet, when it is
// older than the interval or was invalidated, and no failed read's backoff holds the next
// one back.
func (c *Cache) Get(ctx context.Context, key string, read func(context.Context) (*Metadata, error)) Result {
	now := c.now()
	e := c.entry(key, now)
	e.mu.Lock()
	defer e.mu.Unlock()
	due := e.invalidated || e.metadata == nil || now.Sub(e.readAt) >= c.interval()
	if due && (e.invalidated || e.failures == 0 || !now.Before(e.retryAt(c.interval()))) {
		md, err := read(ctx)
		now = c.now()
		e.invalidated = false
		if err != nil {
			e.lastErr, e.failedAt = err, now
			e.failures++
		} else {
			e.metadata, e.readAt = md, now
			e.lastErr, e.failures = nil, 0
		}
	}
	r := Result{Metadata: e.metadata, ReadAt: e.readAt, Err: e.lastErr, FailedAt: e.failedAt}
	if e.failures > 0 {
		r.RetryAt = e.retryAt(c.interval())
	}
	return r
}

// retryAt is when a read may be made again after e's failures.
func (e *entry) retryAt(interval time.Duration) time.Time {
	delay := firstRetry
	for i := 1; i < e.failures && delay < maxRetry; i++ {
		delay *= 2
	}
	delay = min(delay, maxRetry, interval)
	return e.failedAt.Add(delay)
}

// Invalidate makes the next Get of key read the document again at once: a token call
// failed in a way that suggests the server moved its endpoints.
func (c *Cache) Invalidate(key string) {
	c.mu.Lock()
	e := c.entries[key]
	c.mu.Unlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	e.invalidated = true
	e.mu.Unlock()
}
