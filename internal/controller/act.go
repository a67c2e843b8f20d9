package controller

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// act carries out a decision and returns what it did. It writes the owned Secrets, never
// status, and leaves the gathered snapshot as it was read.
func (r *BankTokenRequestReconciler) act(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, d decision) outcome {
	o := outcome{held: g.Held, why: d, requestHash: g.RequestHash, clientCertificate: g.ClientCertificate, signingKeys: g.SigningKeys,
		primaryGrantOnly: refreshRefusedTooOften(g.Refresh, g.RequestHash)}
	switch d.action {
	case actReportProblem:
		o.kind, o.problem = outcomeInputProblem, g.Problem
		if err := r.withdrawRefusedPrivateKey(ctx, btr, g, g.Problem); err != nil {
			o.kind, o.err = outcomeAPIError, err
		}
	case actSuspend:
		o.kind = outcomeSuspended
	case actWait:
		o.kind, o.waitUntil = outcomeWaiting, d.waitUntil
		o.revocations, o.err = r.revokeDueGrants(ctx, btr, g, d)
	case actKeep:
		o.kind = outcomeKept
		// A changed secretTemplate or certificateDelivery is applied without a new token: the
		// client certificate read is the one the held token was obtained with (its Secret's
		// version is one of the inputs the token's request hash covers).
		data, annotations := g.OutputSecret.Data, tokenAnnotations(g.OutputSecret)
		if delivered := withCertificateDelivery(data, r.certificateDelivery(btr, g.Connection), g.TLS); !sameData(delivered, data) {
			data, annotations[annotationChecksum] = delivered, dataChecksum(delivered)
		}
		if err := r.writeOutputSecret(ctx, btr, g, data, annotations); err != nil {
			o.kind, o.err = outcomeAPIError, err
			return o
		}
		o.revocations, o.err = r.revokeDueGrants(ctx, btr, g, d)
	case actObtain:
		return r.renew(ctx, btr, g, o)
	}
	return o
}

// revokeDueGrants revokes the grants whose time has come when the decision says so;
// otherwise it says when the first is due.
func (r *BankTokenRequestReconciler) revokeDueGrants(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, d decision) (revocationReport, error) {
	switch {
	case r.Revoker == nil:
		return revocationReport{}, nil
	case !d.revoke:
		next := earliestDue(g.Refresh.Revocations)
		if !next.IsZero() && next.Before(d.revocationsPausedUntil) {
			next = d.revocationsPausedUntil
		}
		return revocationReport{next: next}, nil
	}
	return r.revokeDue(ctx, btr, g, r.Clock.Now())
}

// renew obtains a token and publishes it: the refresh token it came with is already
// written down (by obtain) before the access token reaches workloads.
func (r *BankTokenRequestReconciler) renew(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, o outcome) outcome {
	// Once started, a renewal finishes even when the manager is stopping: a token call
	// cancelled after it was sent spends its refresh token and throws the bank's answer
	// away. The token call has its own timeout; the manager's graceful-shutdown timeout is
	// longer than it, and the Pod's grace period longer still.
	ctx = context.WithoutCancel(ctx)
	log := logf.FromContext(ctx)
	log.V(1).Info("obtaining a token", "reason", o.why.reason, "detail", o.why.message)
	o.replaced = g.Held != nil || g.OutputSecret != nil
	got := r.obtain(ctx, btr, g, o.why.permit, r.Clock.Now())
	o.refreshTokenRejected, o.primaryGrantOnly = got.refreshTokenRejected, got.primaryGrantOnly
	o.revocations.next = got.revocationDue
	o.lastAttempt = got.attempt
	if got.budgetWait != nil {
		return waitAfterRefusedRefresh(ctx, o, got)
	}
	if got.failure != nil {
		return obtainFailed(ctx, o, got, btr.Status.FailedAttempts+1)
	}
	if got.storeErr != nil {
		if got.token == nil {
			// Marking the refresh token in flight failed: nothing was sent, so a quick retry
			// costs the bank nothing.
			o.kind, o.err = outcomeAPIError, got.storeErr
			return o
		}
		return notStored(ctx, o, got.storeErr)
	}
	tok := got.token
	// The Secret and status keep whole seconds; deciding on the same values later keeps
	// every derived time (renewal, jitter) identical, so a later reconcile writes nothing.
	tok.IssuedAt = tok.IssuedAt.Truncate(time.Second)
	tok.ExpiresAt = tok.ExpiresAt.Truncate(time.Second)
	held := &heldToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType, Scope: tok.Scope,
		IssuedAt: tok.IssuedAt, ExpiresAt: tok.ExpiresAt, RequestHash: g.RequestHash}
	// The certificate the token was obtained with, in the same update as the token.
	data := withCertificateDelivery(outputSecretData(tok), r.certificateDelivery(btr, g.Connection), g.TLS)
	annotations := map[string]string{
		annotationIssuedAt:  formatTime(tok.IssuedAt),
		annotationInputHash: g.RequestHash,
		annotationChecksum:  dataChecksum(data),
	}
	if got.refreshMark != "" {
		annotations[annotationRefreshCompleted] = got.refreshMark
	}
	if requested := btr.Annotations[tokensv1alpha1.RefreshRequestedAtAnnotation]; requested != "" {
		annotations[annotationRefreshRequestedAt] = requested
		held.RefreshRequestedAt = requested
	}
	if err := r.writeOutputSecret(ctx, btr, g, data, annotations); err != nil {
		return notStored(ctx, o, err)
	}
	o.kind, o.held = outcomeIssued, held
	return o
}

// obtainFailed: the bank, or the way to it, refused a token; attempt is this one's number.
func obtainFailed(ctx context.Context, o outcome, got obtained, attempt int32) outcome {
	log := logf.FromContext(ctx)
	log.Info("obtaining a token failed", "reason", got.failure.Reason, "class", got.failure.Class,
		"attempts", attempt, "interactionID", interactionIDOf(got.attempt), "message", got.failure.Message)
	if got.storeErr != nil {
		// The failure is counted and backs off; an error returned would retry in seconds.
		log.Info("storing the refresh tokens after the failed call failed too", "error", got.storeErr.Error())
	}
	o.kind, o.failure = outcomeFailed, got.failure
	return o
}

// waitAfterRefusedRefresh: the bank refused the refresh token, and the connection's budget
// holds back the primary grant that follows. Not a failure: the refresh token is spent, the
// request waits for its turn, and the next reconcile goes to the primary grant.
func waitAfterRefusedRefresh(ctx context.Context, o outcome, got obtained) outcome {
	if got.storeErr != nil {
		// The spent refresh token is remembered in memory; the next reconcile will not send it.
		logf.FromContext(ctx).Info("storing the refresh tokens after a refused refresh failed", "error", got.storeErr.Error())
	}
	o.kind, o.budgetWait, o.waitUntil = outcomeBudgetWait, got.budgetWait, got.budgetWait.retryAt
	return o
}

// notStored: the bank answered with a token that could not be stored. Retrying at the
// queue's pace would call the bank every few seconds, each call rotating the refresh token,
// so it is a failed attempt like a failed call: one the apiserver refuses as invalid waits
// for a change of the spec or its inputs (Stalled); any other backs off.
func notStored(ctx context.Context, o outcome, err error) outcome {
	logf.FromContext(ctx).Info("a token was obtained but could not be stored", "error", err.Error())
	o.kind, o.failure, o.err = outcomeFailed, storeFailure(err), nil
	return o
}

// storeFailure classifies a failure to store an obtained token. The apiserver's message
// names fields and the spec's own values, never a Secret's data.
func storeFailure(err error) *providers.Error {
	if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsRequestEntityTooLargeError(err) {
		return &providers.Error{Class: providers.ClassConfiguration, Reason: tokensv1alpha1.ReasonOutputSecretRejected,
			Message: "a token was obtained but the apiserver refused to store it: " + err.Error()}
	}
	return &providers.Error{Class: providers.ClassTransient, Reason: tokensv1alpha1.ReasonInternalError,
		Message: "a token was obtained but storing it failed: " + err.Error()}
}
