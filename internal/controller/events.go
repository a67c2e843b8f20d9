package controller

import (
	corev1 "k8s.io/api/core/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Event reasons. Events are emitted only when something changes.
const (
	eventTokenIssued          = "TokenIssued"
	eventTokenRefreshed       = "TokenRefreshed"
	eventRefreshFailed        = "RefreshFailed"
	eventIssueFailed          = "IssueFailed"
	eventRecovered            = "Recovered"
	eventRefreshTokenRejected = "RefreshTokenRejected"
	// eventGrantsRevoked: grants the operator no longer uses were revoked at the bank.
	eventGrantsRevoked = "GrantsRevoked"
	// eventGrantsLeftLive: grants could not be revoked and stay live at the bank until they expire.
	eventGrantsLeftLive = "GrantsLeftLive"
	// reasonClientCertificateExpiresBeforeToken: the client certificate expires before the
	// token held; emitted when that first becomes true.
	reasonClientCertificateExpiresBeforeToken = "ClientCertificateExpiresBeforeToken"
)

// emitEvents tells what changed, from the outcome and the status just reported compared
// with the status before this reconcile.
func (r *BankTokenRequestReconciler) emitEvents(btr *tokensv1alpha1.BankTokenRequest, o outcome, before *tokensv1alpha1.BankTokenRequestStatus) {
	failedBefore := before.FailedAttempts
	if now := btr.Status.ClientCertificate; now != nil && now.ExpiresBeforeToken &&
		(before.ClientCertificate == nil || !before.ClientCertificate.ExpiresBeforeToken) {
		r.event(btr, corev1.EventTypeWarning, reasonClientCertificateExpiresBeforeToken, "CheckClientCertificate", "%s", now.Message)
	}
	if o.refreshTokenRejected {
		r.event(btr, corev1.EventTypeNormal, eventRefreshTokenRejected, "Refresh",
			"the bank rejected the refresh token; falling back to the %s grant", primaryGrant(&btr.Spec))
	}
	r.emitRevocationEvents(btr, o.revocations)
	switch {
	case o.kind == outcomeIssued && failedBefore > 0:
		r.event(btr, corev1.EventTypeNormal, eventRecovered, "Recover",
			"obtained a token after %d failed attempts; valid until %s", failedBefore, formatTime(o.held.ExpiresAt))
	case o.kind == outcomeIssued && r.IssueEvents && o.replaced:
		r.event(btr, corev1.EventTypeNormal, eventTokenRefreshed, "Refresh",
			"%s: new token valid until %s", o.why.message, formatTime(o.held.ExpiresAt))
	case o.kind == outcomeIssued && r.IssueEvents:
		r.event(btr, corev1.EventTypeNormal, eventTokenIssued, "Issue",
			"token valid until %s written to Secret %s", formatTime(o.held.ExpiresAt), outputSecretName(btr))
	case o.kind == outcomeFailed && btr.Status.FailedAttempts == 1:
		reason := eventIssueFailed
		if o.held != nil {
			reason = eventRefreshFailed
		}
		r.event(btr, corev1.EventTypeWarning, reason, "Issue", "%s: %s", o.failure.Reason,
			withInteractionID(failureMessage(o.failure, &btr.Status), interactionIDOf(o.lastAttempt)))
	}
}

func (r *BankTokenRequestReconciler) emitRevocationEvents(btr *tokensv1alpha1.BankTokenRequest, report revocationReport) {
	if report.revoked > 0 {
		r.event(btr, corev1.EventTypeNormal, eventGrantsRevoked, "Revoke",
			"revoked %d grant(s) the operator no longer uses at the bank", report.revoked)
	}
	if report.leftLive > 0 {
		r.event(btr, corev1.EventTypeWarning, eventGrantsLeftLive, "Revoke",
			"%d grant(s) the operator no longer uses could not be revoked and stay live at the bank until they expire: %s",
			report.leftLive, report.lastFailure())
	}
}

func (r *BankTokenRequestReconciler) event(btr *tokensv1alpha1.BankTokenRequest, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(btr, nil, eventType, reason, action, note, args...)
	}
}
