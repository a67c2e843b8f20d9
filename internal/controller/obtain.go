package controller

import (
	"context"

	logf "sigs.k8s.io/controller-runtime/pkg/log"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
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
}

// obtain gets a token: with the refresh token when one may be sent (see usableRefreshToken),
// falling back at once to the primary grant when the bank rejects it. A refresh token that
// may have reached the bank in a failed call is never sent again.
func (r *BankTokenRequestReconciler) obtain(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) obtained {
	req := r.providerRequest(btr, g)
	rts := &refreshTokenSecret{current: g.RefreshSecret}
	rt, unusable := r.usableRefreshToken(g)
	if unusable != "" {
		logf.FromContext(ctx).Info("not sending the stored refresh token; using the primary grant", "why", unusable)
	}
	var got obtained
	if !rt.IsZero() {
		if done, result := r.refresh(ctx, btr, g, req, rts, rt); done {
			return result
		}
		got.refreshTokenRejected = true
	}
	tok, failure := r.fetch(ctx, btr, req, primaryGrant(&btr.Spec))
	if failure != nil {
		got.failure = failure
		if !g.RefreshToken.IsZero() {
			// Rejected or not to be sent: forget it, so that no restart sends it again.
			got.storeErr = r.store(ctx, btr, rts, "", "")
		}
		return got
	}
	got.token = tok
	got.storeErr = r.store(ctx, btr, rts, tok.RefreshToken, g.RequestHash)
	return got
}

// refresh sends the refresh token, marked in flight first. done is false only when the bank
// rejected the token, so that the primary grant is tried at once.
func (r *BankTokenRequestReconciler) refresh(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, req providers.Request, rts *refreshTokenSecret, rt providers.Secret) (bool, obtained) {
	mark := refreshMark(rt, r.Clock.Now())
	if err := r.markInFlight(ctx, btr, rts, mark); err != nil {
		return true, obtained{storeErr: err} // nothing was sent
	}
	req.RefreshToken = rt
	tok, failure := r.fetch(ctx, btr, req, providers.GrantRefreshToken)
	switch {
	case failure == nil:
		got := obtained{token: tok, refreshMark: mark}
		if !tok.RefreshToken.IsZero() {
			got.storeErr = r.store(ctx, btr, rts, tok.RefreshToken, g.RequestHash)
		}
		// RFC 6749 §6: without a new one the current refresh token stays valid; the output
		// Secret written next records the mark as answered.
		return true, got
	case failure.Class == providers.ClassRefreshTokenRejected, answeredWithoutToken(failure):
		// A refusal in any shape (invalid_grant, a gateway's 401, a proxy's HTML 400, a 5xx,
		// an unreadable 200) spends the token; the primary grant follows at once, and only
		// its answer can stall the resource.
		r.spent.add(rt)
		return false, obtained{}
	case !failure.MayHaveBeenProcessed():
		// The bank never saw it: it is still good; take the mark back.
		return true, obtained{failure: failure, storeErr: r.store(ctx, btr, rts, rt, g.RequestHash)}
	default:
		r.spent.add(rt)
		return true, obtained{failure: failure, storeErr: r.store(ctx, btr, rts, "", "")}
	}
}

// answeredWithoutToken: the bank processed the call and answered with something other than
// a token. Rate limiting and redirects were not processed (MayHaveBeenProcessed is false).
func answeredWithoutToken(failure *providers.Error) bool {
	return failure.StatusCode != 0 && failure.MayHaveBeenProcessed()
}

func (r *BankTokenRequestReconciler) fetch(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, req providers.Request, grant providers.GrantType) (*providers.Token, *providers.Error) {
	start := r.Clock.Now()
	tok, err := r.Fetcher.Fetch(ctx, req)
	r.Metrics.observeUpstream(btr.Spec.Provider, grant, err, r.Clock.Since(start))
	if err != nil {
		return nil, asFailure(err)
	}
	return tok, nil
}

func (r *BankTokenRequestReconciler) providerRequest(btr *tokensv1alpha1.BankTokenRequest, g *gathered) providers.Request {
	headers := make([]providers.Header, 0, len(btr.Spec.Headers))
	for _, h := range btr.Spec.Headers {
		headers = append(headers, providers.Header{Name: h.Name, Value: h.Value})
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
		TLS:                  g.TLS,
		DefaultLifetime:      r.DefaultTokenLifetime,
		AllowInsecureHTTP:    r.AllowInsecureEndpoints,
	}
}
