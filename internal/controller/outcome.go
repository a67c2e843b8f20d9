package controller

import (
	"crypto/x509"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// outcomeKind names what one reconcile did or found; status, events and the requeue are
// derived from it, never from the steps that produced it.
type outcomeKind int

const (
	// outcomeReadFailed: the inputs could not be read from the apiserver; nothing was decided.
	outcomeReadFailed outcomeKind = iota
	// outcomeInputProblem: the inputs cannot make a request until the user fixes them.
	outcomeInputProblem
	// outcomeSuspended: spec.suspend; nothing is requested.
	outcomeSuspended
	// outcomeKept: the held token is good and nothing is due.
	outcomeKept
	// outcomeWaiting: a token is needed, but the backoff of earlier failures (or a
	// permanent failure) holds the next attempt back.
	outcomeWaiting
	// outcomeIssued: a new token was obtained and published.
	outcomeIssued
	// outcomeFailed: the bank, or the way to it, refused a token.
	outcomeFailed
	// outcomeAPIError: the apiserver refused a read or a write; controller-runtime retries.
	outcomeAPIError
	// outcomeBudgetWait: a token call was due, and the connection's call budget (or the
	// bank's pause of it) holds it back until the request's turn. Not a failure.
	outcomeBudgetWait
)

// outcome is what act returns: what was done, and what the workload holds afterwards.
type outcome struct {
	kind outcomeKind
	// held is the token the workload holds after this reconcile (nil: none usable).
	held *heldToken

	// requestHash fingerprints the inputs the reconcile acted on.
	requestHash string
	// problem is set for outcomeInputProblem.
	problem *inputProblem
	// why says why a token was needed (a policy's reason and message).
	why decision
	// replaced: an earlier token existed, so the new one is a refresh (outcomeIssued).
	replaced bool
	// refreshTokenRejected: the bank refused the refresh token and the primary grant was used.
	refreshTokenRejected bool
	// primaryGrantOnly: renewals use the primary grant, the bank having refused its refresh
	// tokens too often under these inputs (refreshRefusedTooOften).
	primaryGrantOnly bool
	// failure is the classified error of outcomeFailed.
	failure *providers.Error
	// waitUntil is when the next attempt may be made (outcomeWaiting, outcomeBudgetWait);
	// zero: not by time.
	waitUntil time.Time
	// budgetWait says why the connection's budget holds the call back (outcomeBudgetWait).
	budgetWait *budgetWait
	// err is the apiserver error of outcomeAPIError.
	err error
	// clientCertificate is the client certificate the reconcile read, nil when none.
	clientCertificate *x509.Certificate
	// signingKeys are the client assertion keys the reconcile read.
	signingKeys signingKeys
	// revocations is what revoking grants the operator no longer uses did, and when the
	// next is due.
	revocations revocationReport
	// lastAttempt is the last token call this reconcile made, nil when it made none.
	lastAttempt *tokensv1alpha1.TokenCallAttempt
}

// requeue says when to come back, from the outcome and the status just reported: at the
// renewal time, at the next retry, or at the held token's expiry (so that Ready turns false
// on time), whichever the outcome calls for.
func (o outcome) requeue(status *tokensv1alpha1.BankTokenRequestStatus, now time.Time) ctrl.Result {
	result := o.requeueForToken(status, now)
	if due := o.revocations.next; !due.IsZero() && (result.RequeueAfter == 0 || due.Before(now.Add(result.RequeueAfter))) {
		if o.kind != outcomeAPIError && o.kind != outcomeReadFailed {
			return requeueAt(due, now)
		}
	}
	return result
}

func (o outcome) requeueForToken(status *tokensv1alpha1.BankTokenRequestStatus, now time.Time) ctrl.Result {
	switch o.kind {
	case outcomeKept, outcomeIssued:
		return requeueAt(status.RenewalTime.Time, now)
	case outcomeFailed:
		if !isPermanent(o.failure) {
			return requeueAt(status.RenewalTime.Time, now)
		}
	case outcomeWaiting, outcomeBudgetWait:
		until := o.waitUntil
		if o.held.validAt(now) && (until.IsZero() || o.held.ExpiresAt.Before(until)) {
			until = o.held.ExpiresAt
		}
		if until.IsZero() {
			return ctrl.Result{}
		}
		return requeueAt(until, now)
	case outcomeAPIError, outcomeReadFailed:
		return ctrl.Result{}
	}
	if o.held.validAt(now) {
		return requeueAt(o.held.ExpiresAt, now)
	}
	return ctrl.Result{}
}

// isPermanent: retrying will not help until the spec or the credentials change.
func isPermanent(failure *providers.Error) bool {
	return failure.Class == providers.ClassPermanent || failure.Class == providers.ClassConfiguration
}

func requeueAt(t, now time.Time) ctrl.Result {
	if d := t.Sub(now); d > 0 {
		return ctrl.Result{RequeueAfter: d}
	}
	return ctrl.Result{RequeueAfter: time.Second}
}
