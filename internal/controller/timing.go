package controller

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"k8s.io/apimachinery/pkg/types"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

const (
	// DefaultSecretPropagationDelay is how late a workload may see a new output Secret: the
	// kubelet's sync period (1 m) plus its Secret cache TTL (1 m) for a mounted volume.
	DefaultSecretPropagationDelay = 2 * time.Minute
	// DefaultMaxRefreshInterval caps the time between refreshes when the spec does not.
	DefaultMaxRefreshInterval = 24 * time.Hour
	// renewalJitterShare is the share of the renewal window (the time between the nominal
	// renewal point and expiry) over which renewals are spread, always earlier, never later.
	renewalJitterShare = 0.2
	// minRenewalDelay keeps a tiny or already-expired lifetime from becoming a hot loop.
	minRenewalDelay = time.Second
	// DefaultMinRenewalInterval is the least time between two renewals of one token when the
	// reconciler is not told otherwise (--min-renewal-interval): a bank answering
	// expires_in: 1 would otherwise have a token renewed, and three apiserver writes made,
	// every second.
	DefaultMinRenewalInterval = 30 * time.Second

	// Failure backoff: 5s, 10s, 20s ... capped at 5m, each ±20%.
	backoffBase   = 5 * time.Second
	backoffCap    = 5 * time.Minute
	backoffJitter = 0.2
)

// renewalTime says when a token issued at issuedAt and expiring at expiresAt should be
// renewed: renewBefore or renewBeforePercentage ahead of expiry (default: at two thirds of
// the lifetime, or the propagation delay ahead of expiry when that is earlier and the
// lifetime leaves at least twice the delay, so that workloads reading the output Secret
// late still hold a valid token), never later than maxRefreshInterval after issue, moved earlier by a
// jitter derived from the resource's UID so that tokens issued together are renewed apart.
// The result is in whole seconds.
func renewalTime(spec *tokensv1alpha1.BankTokenRequestSpec, uid types.UID, issuedAt, expiresAt time.Time, propagationDelay time.Duration) time.Time {
	lifetime := expiresAt.Sub(issuedAt)
	if lifetime <= 0 {
		return issuedAt.Add(minRenewalDelay)
	}
	renewBefore := lifetime / 3
	switch {
	case spec.RenewBefore != nil && spec.RenewBefore.Duration < lifetime:
		renewBefore = spec.RenewBefore.Duration
	case spec.RenewBeforePercentage != nil:
		renewBefore = lifetime * time.Duration(*spec.RenewBeforePercentage) / 100
	case propagationDelay > renewBefore && propagationDelay <= lifetime/2:
		renewBefore = propagationDelay
	}
	renewAt := expiresAt.Add(-renewBefore)

	maxInterval := DefaultMaxRefreshInterval
	if spec.MaxRefreshInterval != nil {
		maxInterval = spec.MaxRefreshInterval.Duration
	}
	window := renewBefore
	if capAt := issuedAt.Add(maxInterval); capAt.Before(renewAt) {
		renewAt = capAt
		// A capped renewal has all the time until expiry to spare; spread it over a slice of
		// the interval itself so a thousand three-year tokens do not refresh in one second.
		window = maxInterval
	}
	renewAt = renewAt.Add(-time.Duration(float64(window) * renewalJitterShare * unitJitter(uid, issuedAt.Unix())))
	if earliest := issuedAt.Add(minRenewalDelay); renewAt.Before(earliest) {
		renewAt = earliest
	}
	// Whole seconds, as status shows it: the time a reconcile is scheduled for is then
	// exactly the time the policy finds the renewal due.
	return renewAt.Truncate(time.Second)
}

// flooredRenewalTime is renewalTime, but never sooner than minInterval after issue: a token
// whose lifetime is shorter is expired from its expiry until then.
func flooredRenewalTime(spec *tokensv1alpha1.BankTokenRequestSpec, uid types.UID, issuedAt, expiresAt time.Time, propagationDelay, minInterval time.Duration) time.Time {
	renewAt := renewalTime(spec, uid, issuedAt, expiresAt, propagationDelay)
	if floor := issuedAt.Add(minInterval).Truncate(time.Second); renewAt.Before(floor) {
		return floor
	}
	return renewAt
}

// lifetimeBelowFloor says whether a token lives less than minInterval: it is then expired for
// a while before each renewal.
func lifetimeBelowFloor(issuedAt, expiresAt time.Time, minInterval time.Duration) bool {
	return expiresAt.Sub(issuedAt) < minInterval
}

// retryDelay is the wait after the given number of consecutive failures, with jitter from
// the UID so retries of many resources failing together do not arrive together. A server's
// Retry-After wins when it asks for longer.
func retryDelay(uid types.UID, failedAttempts int32, retryAfter time.Duration) time.Duration {
	if failedAttempts < 1 {
		failedAttempts = 1
	}
	delay := backoffCap
	if shift := failedAttempts - 1; shift < 16 {
		if d := backoffBase << shift; d < backoffCap {
			delay = d
		}
	}
	// Spread to [1-j, 1+j) of the nominal delay.
	spread := 1 - backoffJitter + 2*backoffJitter*unitJitter(uid, int64(failedAttempts))
	delay = time.Duration(float64(delay) * spread)
	if retryAfter > delay {
		delay = retryAfter
	}
	return delay
}

// changedInputRetryCap bounds how long a changed input waits for the backoff of earlier
// failures: a fix is tried within this much of the last failure, however long the backoff.
const changedInputRetryCap = 30 * time.Second

// changedInputRetryDelay is how soon after a failure an attempt with changed inputs may
// go: the backoff, at most changedInputRetryCap. The first failure's is about backoffBase,
// so a fix made at once waits seconds, while a spec edited in a loop gets one call per
// changedInputRetryCap at most.
func changedInputRetryDelay(uid types.UID, failedAttempts int32) time.Duration {
	return min(retryDelay(uid, failedAttempts, 0), changedInputRetryCap)
}

// unitJitter is a deterministic number in [0, 1) from a UID and a salt: decisions stay pure
// functions of their inputs, yet differ from one resource to the next.
func unitJitter(uid types.UID, salt int64) float64 {
	h := sha256.New()
	h.Write([]byte(uid))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(salt))
	h.Write(b[:])
	sum := h.Sum(nil)
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / float64(1<<53)
}
