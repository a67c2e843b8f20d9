package controller

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// report writes into status what the outcome means for the workload: a pure function of
// the resource as read, the outcome and the time. Each outcome has one named setter; they
// are the only code that touches conditions.
func report(btr *tokensv1alpha1.BankTokenRequest, o outcome, now time.Time, propagationDelay, minRenewalInterval time.Duration) {
	if o.kind == outcomeReadFailed {
		setReconciling(btr, tokensv1alpha1.ReasonInternalError, "reading referenced objects failed; retrying")
		return
	}
	btr.Status.ObservedGeneration = btr.Generation
	if o.lastAttempt != nil {
		// Only a reconcile that called the bank sets it, and that one writes status anyway.
		btr.Status.LastAttempt = o.lastAttempt
	}
	if o.kind != outcomeBudgetWait {
		clearBudgetWait(btr)
	}
	if o.kind != outcomeInputProblem {
		// Judged against the token held after this reconcile, a new one included.
		btr.Status.ClientCertificate = clientCertificateStatus(o.clientCertificate, o.held)
		btr.Status.SigningKeys = o.signingKeys.status
	}
	switch o.kind {
	case outcomeInputProblem:
		setInputProblem(btr, o.held, o.problem, now)
	case outcomeSuspended:
		setSuspended(btr, o.held, now)
	case outcomeKept:
		setIssued(btr, o.held, now, propagationDelay, minRenewalInterval, o.primaryGrantOnly, o.signingKeys)
	case outcomeIssued:
		setIssued(btr, o.held, now, propagationDelay, minRenewalInterval, o.primaryGrantOnly, o.signingKeys)
		btr.Status.LastRefreshRequestedAt = btr.Annotations[tokensv1alpha1.RefreshRequestedAtAnnotation]
	case outcomeWaiting:
		setWaiting(btr, o.held, now)
	case outcomeFailed:
		setFailed(btr, o.held, o.failure, o.requestHash, now)
	case outcomeAPIError:
		setStoreFailed(btr, o.held, o.err, now)
	case outcomeBudgetWait:
		setBudgetWait(btr, o.held, o.budgetWait, now)
	}
}

// setBudgetWait: a token call was due and the connection's call budget holds it back.
// Reconciling says why, in a message that stays the same from one try to the next, so that
// waiting writes status once. Ready is left as it is while the token held is valid; a token
// expired meanwhile is TokenExpired; with none ever issued, Ready is Unknown, for one is on
// its way. It is no failure: the attempts, the last failure and the renewal time stay.
func setBudgetWait(btr *tokensv1alpha1.BankTokenRequest, held *heldToken, wait *budgetWait, now time.Time) {
	reason, message := wait.reason(), wait.message()
	setReconciling(btr, reason, message)
	setStalled(btr, "", "")
	switch {
	case held.validAt(now):
	case held != nil:
		setReady(btr, metav1.ConditionFalse, tokensv1alpha1.ReasonTokenExpired, fmt.Sprintf(
			"the token expired at %s; a new one waits: %s", formatTime(held.ExpiresAt), message))
	case btr.Status.IssuedAt == nil:
		setReady(btr, metav1.ConditionUnknown, reason, message)
	default:
		setReady(btr, metav1.ConditionFalse, reason, "the output Secret holds no usable token; a new one waits: "+message)
	}
}

// clearBudgetWait removes a Reconciling condition a wait for the budget wrote: the outcome
// of this reconcile says what happens now.
func clearBudgetWait(btr *tokensv1alpha1.BankTokenRequest) {
	c := meta.FindStatusCondition(btr.Status.Conditions, tokensv1alpha1.ConditionReconciling)
	if c != nil && (c.Reason == tokensv1alpha1.ReasonWaitingForConnectionBudget || c.Reason == tokensv1alpha1.ReasonConnectionPaused) {
		setReconciling(btr, "", "")
	}
}

// setIssued: the output Secret holds the token last issued and nothing is failing; it is
// good unless the bank's lifetime is below the renewal floor and it has run out.
// A key switch owed a token brings the renewal forward to it, so that the reconcile comes
// back then, and a reconcile that verifies from metadata finds it due.
func setIssued(btr *tokensv1alpha1.BankTokenRequest, held *heldToken, now time.Time, propagationDelay, minRenewalInterval time.Duration, primaryGrantOnly bool, keys signingKeys) {
	status := &btr.Status
	status.SecretName = outputSecretName(btr)
	status.TokenType = held.TokenType
	status.Scope = held.Scope
	status.IssuedAt = &metav1.Time{Time: held.IssuedAt.Truncate(time.Second)}
	status.ExpiresAt = &metav1.Time{Time: held.ExpiresAt.Truncate(time.Second)}
	renewAt := flooredRenewalTime(&btr.Spec, btr.UID, held.IssuedAt, held.ExpiresAt, propagationDelay, minRenewalInterval)
	if keys.switchPendingFor(held) && keys.switchAt.Before(renewAt) {
		renewAt = keys.switchAt
	}
	status.RenewalTime = &metav1.Time{Time: renewAt.Truncate(time.Second)}
	setIssuedReady(btr, held, now, renewAt, minRenewalInterval)
	if primaryGrantOnly {
		notePrimaryGrantOnly(btr)
	}
	setReconciling(btr, "", "")
	setStalled(btr, "", "")
	clearFailures(btr)
}

// notePrimaryGrantOnly adds to Ready's message that renewals use the primary grant, the
// bank having refused its refresh tokens too often under these inputs.
func notePrimaryGrantOnly(btr *tokensv1alpha1.BankTokenRequest) {
	ready := meta.FindStatusCondition(btr.Status.Conditions, tokensv1alpha1.ConditionReady)
	if ready == nil {
		return
	}
	note := fmt.Sprintf("; renewing with the primary grant: the bank refused the last %d refresh tokens it issued "+
		"(refresh tokens are sent again once the spec or the credentials change)", maxRefreshRefusals)
	setReady(btr, ready.Status, ready.Reason, ready.Message+note)
}

// setIssuedReady says until when the token is good and when it is renewed; below the
// renewal floor, that it is expired in between, and once it is, Ready is False.
func setIssuedReady(btr *tokensv1alpha1.BankTokenRequest, held *heldToken, now, renewAt time.Time, minRenewalInterval time.Duration) {
	if !lifetimeBelowFloor(held.IssuedAt, held.ExpiresAt, minRenewalInterval) {
		setReady(btr, metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued,
			fmt.Sprintf("token valid until %s, renewal at %s", formatTime(held.ExpiresAt), formatTime(renewAt)))
		return
	}
	floor := fmt.Sprintf("the bank's tokens live %s, less than the operator's minimum renewal interval (%s), "+
		"so the token is expired from %s until its renewal at %s", held.ExpiresAt.Sub(held.IssuedAt), minRenewalInterval,
		formatTime(held.ExpiresAt), formatTime(renewAt))
	if held.validAt(now) {
		setReady(btr, metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued, "token valid until "+formatTime(held.ExpiresAt)+"; "+floor)
		return
	}
	setReady(btr, metav1.ConditionFalse, tokensv1alpha1.ReasonLifetimeBelowMinRenewalInterval, floor)
}

// setInputProblem: nothing can be sent until the user fixes the inputs; the watches bring
// the resource back then. Earlier failures are forgotten: the fix deserves an immediate try.
func setInputProblem(btr *tokensv1alpha1.BankTokenRequest, held *heldToken, problem *inputProblem, now time.Time) {
	setReadyGivenHeld(btr, held, now, problem.Reason, problem.Message, false)
	setStalled(btr, problem.Reason, problem.Message)
	setReconciling(btr, "", "")
	clearFailures(btr)
}

// setAccessRefused: the connection the request names refuses it (or cannot be used); nothing
// is requested until that changes, and the request holds no token (see accessloss.go). note
// says what this reconcile took away; when it took nothing, a note written earlier for the
// same refusal stays, so that status keeps saying what was left live at the bank.
func setAccessRefused(btr *tokensv1alpha1.BankTokenRequest, refusal *accessRefusal, note string) {
	status := &btr.Status
	status.ObservedGeneration = btr.Generation
	status.TokenType, status.Scope = "", ""
	status.IssuedAt, status.ExpiresAt, status.RenewalTime = nil, nil, nil
	status.ClientCertificate, status.Observed, status.SharedGrant = nil, nil, nil
	message := refusal.Message + note
	if stalled := meta.FindStatusCondition(status.Conditions, tokensv1alpha1.ConditionStalled); note == "" && stalled != nil &&
		stalled.Reason == refusal.Reason && strings.HasPrefix(stalled.Message, refusal.Message) {
		message = stalled.Message
	}
	setReady(btr, metav1.ConditionFalse, refusal.Reason, message)
	setStalled(btr, refusal.Reason, message)
	setReconciling(btr, "", "")
	clearFailures(btr)
}

// setSuspended: spec.suspend; no renewal is planned.
func setSuspended(btr *tokensv1alpha1.BankTokenRequest, held *heldToken, now time.Time) {
	setReadyGivenHeld(btr, held, now, tokensv1alpha1.ReasonSuspended, "suspended: no token is requested or refreshed", false)
	setStalled(btr, "", "")
	setReconciling(btr, "", "")
	btr.Status.RenewalTime = nil
	clearFailures(btr)
}

// setWaiting: the next attempt waits for the backoff. Status already says why, except when
// the held token has run out meanwhile: the workload holds nothing usable now. A message
// written by the last failed attempt is kept.
func setWaiting(btr *tokensv1alpha1.BankTokenRequest, held *heldToken, now time.Time) {
	status := &btr.Status
	if held == nil || held.validAt(now) || isReadyReason(btr, tokensv1alpha1.ReasonTokenExpired) || status.LastFailureTime == nil {
		return
	}
	setReadyGivenHeld(btr, held, now, fmt.Sprintf("%d attempts, the last at %s",
		status.FailedAttempts, formatTime(status.LastFailureTime.Time)), "", true)
}

// setFailed counts a failed attempt, schedules the next (none after a permanent failure)
// and says honestly what the workload holds: a token that still works keeps Ready true.
func setFailed(btr *tokensv1alpha1.BankTokenRequest, held *heldToken, failure *providers.Error, requestHash string, now time.Time) {
	status := &btr.Status
	status.FailedAttempts++
	status.LastFailureTime = &metav1.Time{Time: now}
	status.LastFailureRequestHash = requestHash
	// A forced refresh is acted on once, failed or not; retries follow the backoff.
	status.LastRefreshRequestedAt = btr.Annotations[tokensv1alpha1.RefreshRequestedAtAnnotation]
	if isPermanent(failure) {
		status.RenewalTime = nil
		setStalled(btr, failure.Reason, failureMessage(failure, status))
		setReconciling(btr, "", "")
	} else {
		next := now.Add(retryDelay(btr.UID, status.FailedAttempts, failure.RetryAfter))
		status.RenewalTime = &metav1.Time{Time: next}
		if !held.validAt(now) {
			setReconciling(btr, failure.Reason, failureMessage(failure, status))
		}
	}
	setReadyGivenHeld(btr, held, now, failure.Reason, failureMessage(failure, status), true)
}

// failureMessage is the bank's failure and what happens next; status and events share it.
func failureMessage(failure *providers.Error, status *tokensv1alpha1.BankTokenRequestStatus) string {
	if status.RenewalTime == nil {
		return failure.Message + "; not retrying until the spec or the credentials change"
	}
	return failure.Message + "; next attempt at " + formatTime(status.RenewalTime.Time)
}

// setStoreFailed: the apiserver refused a write (often RBAC). The message names the object
// and the verb, never a value.
func setStoreFailed(btr *tokensv1alpha1.BankTokenRequest, held *heldToken, err error, now time.Time) {
	message := "storing the token failed; retrying: " + err.Error()
	setReconciling(btr, tokensv1alpha1.ReasonInternalError, message)
	setReadyGivenHeld(btr, held, now, tokensv1alpha1.ReasonInternalError, message, false)
}

func clearFailures(btr *tokensv1alpha1.BankTokenRequest) {
	btr.Status.FailedAttempts = 0
	btr.Status.LastFailureTime = nil
	btr.Status.LastFailureRequestHash = ""
}

// setReadyGivenHeld is the one place that says what Ready means for the token the workload
// holds, given this reconcile's reason and message and whether obtaining a new token just
// failed. A token that still works keeps Ready true; once it has run out, TokenExpired is
// what Ready says, attempt after attempt, and the failure is the detail.
func setReadyGivenHeld(btr *tokensv1alpha1.BankTokenRequest, held *heldToken, now time.Time, reason, message string, failing bool) {
	detail := reason
	if message != "" {
		detail += "): " + message
	} else {
		detail += ")"
	}
	switch {
	case held.validAt(now) && failing:
		setReady(btr, metav1.ConditionTrue, tokensv1alpha1.ReasonRefreshFailing, fmt.Sprintf(
			"token valid until %s, but refreshing it failed (%s", formatTime(held.ExpiresAt), detail))
	case held.validAt(now):
		setReady(btr, metav1.ConditionTrue, reason, fmt.Sprintf("token valid until %s; %s", formatTime(held.ExpiresAt), message))
	case held != nil && failing:
		setReady(btr, metav1.ConditionFalse, tokensv1alpha1.ReasonTokenExpired, fmt.Sprintf(
			"the token expired at %s and obtaining a new one is failing (%s", formatTime(held.ExpiresAt), detail))
	default:
		setReady(btr, metav1.ConditionFalse, reason, message)
	}
}

// setReady sets the Ready condition. meta.SetStatusCondition keeps lastTransitionTime when
// the status does not change, so a repeated reconcile writes nothing new.
func setReady(btr *tokensv1alpha1.BankTokenRequest, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&btr.Status.Conditions, metav1.Condition{
		Type: tokensv1alpha1.ConditionReady, Status: status, Reason: reason, Message: message,
		ObservedGeneration: btr.Generation,
	})
}

// setReconciling marks that the operator is still working towards a token; an empty reason
// removes the condition, which kstatus wants present only when true.
func setReconciling(btr *tokensv1alpha1.BankTokenRequest, reason, message string) {
	setAbnormalTrue(btr, tokensv1alpha1.ConditionReconciling, reason, message)
}

// setStalled marks that the operator cannot progress until the spec or a referenced object
// changes; an empty reason removes it.
func setStalled(btr *tokensv1alpha1.BankTokenRequest, reason, message string) {
	setAbnormalTrue(btr, tokensv1alpha1.ConditionStalled, reason, message)
}

func setAbnormalTrue(btr *tokensv1alpha1.BankTokenRequest, conditionType, reason, message string) {
	if reason == "" {
		meta.RemoveStatusCondition(&btr.Status.Conditions, conditionType)
		return
	}
	meta.SetStatusCondition(&btr.Status.Conditions, metav1.Condition{
		Type: conditionType, Status: metav1.ConditionTrue, Reason: reason, Message: message,
		ObservedGeneration: btr.Generation,
	})
}

// isReadyReason reports whether Ready, as last written for this generation, has reason.
func isReadyReason(btr *tokensv1alpha1.BankTokenRequest, reason string) bool {
	c := meta.FindStatusCondition(btr.Status.Conditions, tokensv1alpha1.ConditionReady)
	return c != nil && c.Reason == reason && c.ObservedGeneration == btr.Generation
}

// clientCertificateStatus is what status says of the client certificate: the fingerprint a
// bound token is bound to, its expiry, and a warning when it expires before the token held.
func clientCertificateStatus(cert *x509.Certificate, held *heldToken) *tokensv1alpha1.ClientCertificateStatus {
	if cert == nil {
		return nil
	}
	sum := sha256.Sum256(cert.Raw)
	status := &tokensv1alpha1.ClientCertificateStatus{
		SHA256Fingerprint: strings.ReplaceAll(fmt.Sprintf("% X", sum), " ", ":"),
		NotAfter:          &metav1.Time{Time: cert.NotAfter.UTC()},
	}
	if held != nil && cert.NotAfter.Before(held.ExpiresAt) {
		status.ExpiresBeforeToken = true
		status.Message = fmt.Sprintf("the client certificate expires at %s, before the token (%s): renew the certificate "+
			"and update its Secret; the operator then obtains a new token with it at once", formatTime(cert.NotAfter), formatTime(held.ExpiresAt))
	}
	return status
}
