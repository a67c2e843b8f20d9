package controller

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/callbudget"
)

// policyInput is the state a decision is made on. Building it reads; deciding does not.
type policyInput struct {
	Request     *tokensv1alpha1.BankTokenRequest
	Held        *heldToken
	HeldProblem string
	RequestHash string
	Now         time.Time
	// PropagationDelay is the reconciler's SecretPropagationDelay for the request (see
	// propagationDelay).
	PropagationDelay time.Duration
	// MinRenewalInterval is the reconciler's: no token is renewed sooner after its issue.
	MinRenewalInterval time.Duration
	// RevocationsDue: grants the operator stopped using are due to be revoked at the bank.
	RevocationsDue bool
	// ConnectionPausedUntil is when the bank's pause of the request's connection ends (429,
	// Retry-After); zero when it is not paused. Revocations wait for it.
	ConnectionPausedUntil time.Time
	// SigningKeys are the client assertion keys, and when the next takes over.
	SigningKeys signingKeys
}

// policy says whether a new token must be obtained, and why. Like cert-manager's
// re-issuance checks, policies run in order and the first that fires wins.
type policy func(policyInput) (reason, message string, issue bool)

// issuancePolicies decide "do we need a new token?". Only the time-based ones use Now.
var issuancePolicies = []policy{
	tokenMissingOrAltered,
	requestChanged,
	refreshRequested,
	signingKeySwitched,
	tokenExpired,
	renewalDue,
}

// needsIssuance runs the policy chain.
func needsIssuance(in policyInput) (reason, message string, issue bool) {
	for _, p := range issuancePolicies {
		if reason, message, issue := p(in); issue {
			return reason, message, true
		}
	}
	return "", "", false
}

// Reasons for issuing, shown in logs and events.
const (
	issueReasonNoToken          = "NoToken"
	issueReasonRequestChanged   = "RequestChanged"
	issueReasonRefreshRequested = "RefreshRequested"
	issueReasonExpired          = "Expired"
	issueReasonRenewalDue       = "RenewalDue"
	issueReasonSigningKeySwitch = "SigningKeySwitch"
)

func tokenMissingOrAltered(in policyInput) (string, string, bool) {
	if in.Held == nil {
		return issueReasonNoToken, in.HeldProblem, true
	}
	return "", "", false
}

func requestChanged(in policyInput) (string, string, bool) {
	if in.Held.RequestHash != in.RequestHash {
		return issueReasonRequestChanged, "the spec or a referenced Secret changed since the token was issued", true
	}
	return "", "", false
}

func refreshRequested(in policyInput) (string, string, bool) {
	requested := in.Request.Annotations[tokensv1alpha1.RefreshRequestedAtAnnotation]
	answered := in.Request.Status.LastRefreshRequestedAt == requested || (in.Held != nil && in.Held.RefreshRequestedAt == requested)
	if requested != "" && !answered {
		return issueReasonRefreshRequested, fmt.Sprintf("a refresh was requested (%s)", requested), true
	}
	return "", "", false
}

// signingKeySwitched: the next signing key took over since the token held was obtained; a
// token signed for with it now shows at once whether the bank holds it.
func signingKeySwitched(in policyInput) (string, string, bool) {
	if in.SigningKeys.switchDueFor(in.Held, in.Now) {
		return issueReasonSigningKeySwitch, "the next client assertion key signs from " + formatTime(in.SigningKeys.switchAt), true
	}
	return "", "", false
}

func tokenExpired(in policyInput) (string, string, bool) {
	// Under the floor an expired token waits for its renewal time like a valid one.
	if !in.Held.validAt(in.Now) && !in.Now.Before(in.Held.IssuedAt.Add(in.MinRenewalInterval)) {
		return issueReasonExpired, "the token expired at " + formatTime(in.Held.ExpiresAt), true
	}
	return "", "", false
}

func renewalDue(in policyInput) (string, string, bool) {
	renewAt := flooredRenewalTime(&in.Request.Spec, in.Request.UID, in.Held.IssuedAt, in.Held.ExpiresAt, in.PropagationDelay, in.MinRenewalInterval)
	if !in.Now.Before(renewAt) {
		return issueReasonRenewalDue, "the renewal time " + formatTime(renewAt) + " has come", true
	}
	return "", "", false
}

// retryGate says whether an attempt must wait for the backoff of earlier failures, and
// until when. A change of the inputs since the failure (a fixed Secret or spec), or an
// explicit refresh request, deserves a prompt try: the backoff is cut to
// changedInputRetryDelay after the failure, so that editing the spec in a loop cannot make
// a call per edit. After a permanent failure (Stalled) there is no automatic retry at all
// until something changes: wait is true with a zero time.
func retryGate(in policyInput) (wait bool, until time.Time) {
	status := &in.Request.Status
	if status.FailedAttempts == 0 {
		return false, time.Time{}
	}
	if _, _, requested := refreshRequested(in); requested || changedSinceFailure(in) {
		if status.LastFailureTime == nil {
			return false, time.Time{}
		}
		prompt := status.LastFailureTime.Add(changedInputRetryDelay(in.Request.UID, status.FailedAttempts))
		if in.Now.Before(prompt) {
			return true, prompt
		}
		return false, time.Time{}
	}
	if meta.IsStatusConditionTrue(status.Conditions, tokensv1alpha1.ConditionStalled) {
		return true, time.Time{}
	}
	if status.RenewalTime != nil && in.Now.Before(status.RenewalTime.Time) {
		return true, status.RenewalTime.Time
	}
	return false, time.Time{}
}

// changedSinceFailure: the inputs the last failure was met with changed. The request hash
// covers what is sent; a permanent failure is also lifted by any spec change (a new
// generation), for some (an output Secret the apiserver refused) lie outside the hash.
func changedSinceFailure(in policyInput) bool {
	status := &in.Request.Status
	if status.LastFailureRequestHash != in.RequestHash {
		return true
	}
	// A condition without a generation (written by hand, or by an older release) says nothing.
	stalled := meta.FindStatusCondition(status.Conditions, tokensv1alpha1.ConditionStalled)
	return stalled != nil && stalled.Status == metav1.ConditionTrue && stalled.ObservedGeneration != 0 &&
		stalled.ObservedGeneration != in.Request.Generation
}

// action is what a reconcile sets out to do.
type action int

const (
	// actReportProblem: the inputs cannot make a request; say so and wait for a fix.
	actReportProblem action = iota
	// actSuspend: spec.suspend; request nothing.
	actSuspend
	// actKeep: the held token is good and nothing is due.
	actKeep
	// actWait: a token is needed but the backoff of earlier failures holds it back.
	actWait
	// actObtain: obtain a new token now.
	actObtain
)

// decision is what decide concluded, and why.
type decision struct {
	action action
	// reason and message name the issuance policy that fired (actWait, actObtain).
	reason, message string
	// waitUntil is when the backoff ends (actWait); zero: not by time, but by a change.
	waitUntil time.Time
	// revoke: grants due to be revoked are revoked in this reconcile (actKeep, actWait); a
	// renewal leaves them to the reconcile after it.
	revoke bool
	// revocationsPausedUntil: revocations due wait for the end of the connection's pause.
	revocationsPausedUntil time.Time
	// permit is the token call the connection's budget granted (actObtain through a
	// connection); nil for an inline request. Set once the budget was asked, after decide.
	permit *callbudget.Reservation
}

// callsBank says whether acting on d calls the bank: for a token, or to revoke grants (a
// revocation endpoint can hang as long as a token endpoint). The one place that says so:
// fairness takes a token-call slot on it.
func (d decision) callsBank() bool { return d.action == actObtain || d.revoke }

// decide is the pure decision of a reconcile, made on the resource as read: input problems
// first, then suspension, the issuance policies, and the retry gate.
func decide(in policyInput, problem *inputProblem) decision {
	switch {
	case problem != nil:
		return decision{action: actReportProblem}
	case in.Request.Spec.Suspend:
		return decision{action: actSuspend}
	}
	// A connection the bank paused is called for nothing, revocations included.
	revoke, pausedUntil := in.RevocationsDue, time.Time{}
	if revoke && in.Now.Before(in.ConnectionPausedUntil) {
		revoke, pausedUntil = false, in.ConnectionPausedUntil
	}
	reason, message, issue := needsIssuance(in)
	if !issue {
		return decision{action: actKeep, revoke: revoke, revocationsPausedUntil: pausedUntil}
	}
	if wait, until := retryGate(in); wait {
		return decision{action: actWait, reason: reason, message: message, waitUntil: until, revoke: revoke, revocationsPausedUntil: pausedUntil}
	}
	return decision{action: actObtain, reason: reason, message: message}
}
