package controller

import (
	"context"

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
	// storeErr: writing the refresh-token Secret failed. The token in it is then lost and
	// the one sent is remembered as spent.
	storeErr error
}

// obtain gets a token: with the refresh token when one is held, falling back at once to the
// primary grant when the bank rejects it. A refresh token that may have reached the bank in
// a failed call is never sent again (RFC 9700 §4.14): rotating servers treat reuse as theft.
func (r *BankTokenRequestReconciler) obtain(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) obtained {
	req := r.providerRequest(btr, g)
	var got obtained
	if rt := g.RefreshToken; !rt.IsZero() && !r.spent.contains(rt) {
		refresh := req
		refresh.RefreshToken = rt
		tok, failure := r.fetch(ctx, btr, refresh, providers.GrantRefreshToken)
		switch {
		case failure == nil:
			// RFC 6749 §6: a refresh that returns no new refresh token leaves the current one valid.
			next := tok.RefreshToken
			if next.IsZero() {
				next = rt
			}
			return obtained{token: tok, storeErr: r.storeRefreshToken(ctx, btr, g, next)}
		case failure.Class == providers.ClassRefreshTokenRejected:
			r.spent.add(rt)
			got.refreshTokenRejected = true
		case !mayHaveReachedBank(failure):
			return obtained{failure: failure}
		default:
			r.spent.add(rt)
			return obtained{failure: failure, storeErr: r.storeRefreshToken(ctx, btr, g, "")}
		}
	}
	tok, failure := r.fetch(ctx, btr, req, primaryGrant(&btr.Spec))
	if failure != nil {
		got.failure = failure
		if r.spent.contains(g.RefreshToken) {
			// Forget the dead refresh token so that a restart does not send it again.
			got.storeErr = r.storeRefreshToken(ctx, btr, g, "")
		}
		return got
	}
	got.token = tok
	got.storeErr = r.storeRefreshToken(ctx, btr, g, tok.RefreshToken)
	return got
}

// mayHaveReachedBank: whether the bank may have processed the failed call, so that a refresh
// token sent in it must count as spent.
func mayHaveReachedBank(failure *providers.Error) bool {
	return !(failure.Class == providers.ClassRateLimited || failure.Class == providers.ClassConfiguration ||
		failure.Reason == providers.ReasonEndpointUnreachable)
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
