package controller

import (
	"context"
	"errors"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/callbudget"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// obtained is what one renewal got from the bank and did to the refresh token.
type obtained struct {
	token *providers.Token
	// failure is the classified failure when no token was obtained.
	failure *providers.Error
	// refreshTokenRejected: the bank refused the refresh token; the primary grant was used.
	refreshTokenRejected bool
	// refreshMark identifies the refresh call whose answer token is; "" after a primary grant.
	refreshMark string
	// storeErr: writing the refresh-token Secret failed. A token in the answer is then
	// lost, and the refresh token sent is remembered as spent.
	storeErr error
	// revocationDue is when the first grant queued for revocation is due; zero when none is.
	revocationDue time.Time
	// primaryGrantOnly: the bank refused its refresh tokens too often (refreshRefusedTooOften).
	primaryGrantOnly bool
	// budgetWait: the bank refused the refresh token and the connection's budget holds back
	// the primary grant that follows; the chains are stored as after a failure.
	budgetWait *budgetWait
	// attempt is the last token call made, for status.lastAttempt; nil when none was sent.
	attempt *tokensv1alpha1.TokenCallAttempt
}

// obtain gets a token: with a refresh token when one may be sent (see refreshTokenToSend),
// falling back at once to the primary grant when the bank refuses it, when the connection's
// budget lets that second call go. A refresh token that may have reached the bank in a
// failed call is never sent again. permit is the budget's for the first call.
func (r *BankTokenRequestReconciler) obtain(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, permit *callbudget.Reservation, now time.Time) (got obtained) {
	req := r.providerRequest(btr, g)
	// held follows the refresh-token Secret through this renewal's writes.
	held := g.Refresh
	defer func() { got.primaryGrantOnly = refreshRefusedTooOften(held, g.RequestHash) }()
	rt, unusable := r.refreshTokenToSend(g, now)
	if unusable != "" {
		logf.FromContext(ctx).Info("not sending the stored refresh token; using the primary grant", "why", unusable)
	}
	if !rt.IsZero() {
		done, result := r.refresh(ctx, btr, g, req, &held, rt, permit, now)
		if done {
			return result
		}
		got.attempt = result.attempt
		got.refreshTokenRejected = true
		held.Refusals++
		if permit, got.budgetWait = r.takeFollowUp(g, permit); got.budgetWait != nil {
			// The refresh token is spent: the next reconcile goes to the primary grant.
			got.revocationDue, got.storeErr = r.storeChains(ctx, btr, g, &held, r.chainsKept(g), false, now)
			return got
		}
	}
	tok, failure, attempt := r.fetch(ctx, btr, g, req, primaryGrant(&btr.Spec), permit)
	got.attempt = attempt
	if failure != nil {
		got.failure = failure
		// Rejected or not to be used: forget it, so that no restart sends it again.
		got.revocationDue, got.storeErr = r.storeChains(ctx, btr, g, &held, r.chainsKept(g), false, now)
		return got
	}
	got.token = tok
	got.revocationDue, got.storeErr = r.storeChains(ctx, btr, g, &held, r.chainsAfter(g, "", tok.RefreshToken), true, now)
	return got
}

// storeChains stores next, queueing for revocation each held chain it drops that may still
// be live; published says whether a new access token is about to be published.
func (r *BankTokenRequestReconciler) storeChains(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, held *refreshState, next refreshChains, published bool, now time.Time) (time.Time, error) {
	revocations, givenUp := boundedQueue(r.revocationsAfter(g, next, published, now))
	if givenUp > 0 {
		logf.FromContext(ctx).Info("too many grants waiting to be revoked; the oldest stay live at the bank until they expire", "givenUp", givenUp)
	}
	return earliestDue(revocations), r.writeRefreshState(ctx, btr, held, chainsStored(*held, &btr.Spec, next, revocations, g.RequestHash, now))
}

// refresh sends the refresh token, marked in flight first. done is false only when the bank
// refused it, so that the primary grant is tried at once.
func (r *BankTokenRequestReconciler) refresh(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, req providers.Request, held *refreshState, rt providers.Secret, permit *callbudget.Reservation, now time.Time) (bool, obtained) {
	mark := refreshMark(rt, now)
	if err := r.markInFlight(ctx, btr, held, mark); err != nil {
		r.refundTokenCall(permit)
		return true, obtained{storeErr: err} // nothing was sent
	}
	req.RefreshToken = rt
	tok, failure, attempt := r.fetch(ctx, btr, g, req, providers.GrantRefreshToken, permit)
	switch {
	case failure == nil:
		got := obtained{token: tok, refreshMark: mark, attempt: attempt}
		if !tok.RefreshToken.IsZero() && tok.RefreshToken != rt {
			// Rotated: the bank took the token sent back. It is spent, so nothing sends it
			// again, not even to revoke it.
			r.spent.add(rt)
		}
		// When the chains change (a rotated token, a new standby), the store clears the mark;
		// when they do not, the output Secret written next records it as answered, and the
		// refresh costs no second write here.
		if next := r.chainsAfter(g, rt, tok.RefreshToken); next != (refreshChains{g.Refresh.Active, g.Refresh.Standby}) || held.Refusals > 0 {
			held.Refusals = 0 // a refresh answered ends a run of refusals
			got.revocationDue, got.storeErr = r.storeChains(ctx, btr, g, held, next, true, now)
		} else {
			got.revocationDue = earliestDue(g.Refresh.Revocations)
		}
		return true, got
	case failure.Class == providers.ClassRefreshTokenRejected, answeredWithoutToken(failure):
		// A refusal in any shape (invalid_grant, a gateway's 401, a proxy's HTML 400, a 5xx,
		// an unreadable 200) spends the token; the primary grant follows at once, and only
		// its answer can stall the resource.
		r.spent.add(rt)
		logf.FromContext(ctx).Info("the refresh got no token, so its refresh token counts as spent; using the primary grant", "reason", failure.Reason,
			"class", failure.Class, "interactionID", attempt.InteractionID, "message", failure.Message)
		return false, obtained{attempt: attempt}
	default:
		// A call the bank may have acted on spent the token; one it never saw did not. Either
		// way the mark is taken back, and the store keeps only what is still good.
		if failure.MayHaveBeenProcessed() {
			r.spent.add(rt)
		}
		got := obtained{failure: failure, attempt: attempt}
		got.revocationDue, got.storeErr = r.storeChains(ctx, btr, g, held, r.chainsKept(g), false, now)
		return true, got
	}
}

// answeredWithoutToken: the bank processed the call and answered with something other than
// a token. Rate limiting and redirects were not processed (MayHaveBeenProcessed is false).
func answeredWithoutToken(failure *providers.Error) bool {
	return failure.StatusCode != 0 && failure.MayHaveBeenProcessed()
}

// fetch makes one token call, the one place every token call is made, each with an
// x-fapi-interaction-id of its own when the spec sends them. The connection's budget
// charges the call from now (see sendingTokenCall); a call that never went out gives its
// permit back; a 429 or Retry-After pauses the connection (see pauseOnRateLimit), and stays
// charged: the bank counted it. A call that got a token is logged here; a failed one by
// whoever decides what follows (refresh, obtainFailed), with attempt's interaction id.
func (r *BankTokenRequestReconciler) fetch(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, req providers.Request, grant providers.GrantType, permit *callbudget.Reservation) (*providers.Token, *providers.Error, *tokensv1alpha1.TokenCallAttempt) {
	req.InteractionID = interactionIDFor(&btr.Spec)
	r.sendingTokenCall(permit)
	start := r.Clock.Now()
	tok, err := r.Fetcher.Fetch(ctx, req)
	r.Metrics.observeUpstream(btr.Spec.Provider, grant, err, r.Clock.Since(start))
	attempt := &tokensv1alpha1.TokenCallAttempt{Time: metav1.NewTime(start.Truncate(time.Second)), InteractionID: req.InteractionID}
	if err == nil {
		attempt.Outcome = tokensv1alpha1.TokenCallSucceeded
		callOutcomeLog(logf.FromContext(ctx), req.InteractionID).Info("token call succeeded", "grant", grant,
			"interactionID", req.InteractionID, "expiresAt", formatTime(tok.ExpiresAt))
		return tok, nil, attempt
	}
	failure := asFailure(err)
	attempt.Outcome, attempt.Reason = tokensv1alpha1.TokenCallFailed, failure.Reason
	if failure.NotSent {
		r.refundTokenCall(permit)
	}
	r.pauseOnRateLimit(ctx, g.Connection, failure)
	return nil, r.followMovedEndpoint(ctx, btr, g, failure), attempt
}

// asFailure returns the classified failure of a token call. Any other error (a fetcher
// that is not the providers client) is taken as transient and as having reached the bank.
func asFailure(err error) *providers.Error {
	var perr *providers.Error
	if errors.As(err, &perr) {
		return perr
	}
	return &providers.Error{Class: providers.ClassTransient, Reason: providers.ReasonInvalidResponse, Message: err.Error()}
}

func (r *BankTokenRequestReconciler) providerRequest(btr *tokensv1alpha1.BankTokenRequest, g *gathered) providers.Request {
	headers := make([]providers.Header, 0, len(btr.Spec.Headers))
	for _, h := range btr.Spec.Headers {
		headers = append(headers, providers.Header{Name: h.Name, Value: h.Value})
	}
	var parameters []providers.Parameter
	for _, p := range btr.Spec.TokenRequestParameters {
		parameters = append(parameters, providers.Parameter{Name: p.Name, Value: p.Value})
	}
	return providers.Request{
		Provider:             providers.Name(btr.Spec.Provider),
		TokenEndpoint:        btr.Spec.Endpoint,
		GrantType:            providers.GrantType(btr.Spec.GrantType),
		ClientAuthentication: providers.ClientAuthentication(btr.Spec.ClientAuthentication),
		Scope:                btr.Spec.Scope,
		Credentials:          g.Credentials,
		Headers:              headers,
		Metadata:             btr.Spec.Metadata,
		Parameters:           parameters,
		TLS:                  g.TLS,
		DefaultLifetime:      r.DefaultTokenLifetime,
		AllowInsecureHTTP:    r.AllowInsecureEndpoints,
	}
}
