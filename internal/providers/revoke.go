package providers

import (
	"context"
	"net/url"
	"strings"
)

// Revoke asks an RFC 7009 revocation endpoint to revoke refreshToken, a refresh token the
// bank issued for req: the client authenticates as req's token call would (same method,
// credentials, client certificate and headers). endpoint must be on the token endpoint's
// scheme and host: a token is never sent to a host other than the one that issued it.
// RFC 7009 §2.2 answers 200 for a token that is already invalid, so nil means the grant
// is no longer live. A returned error is always an *Error.
func (c *Client) Revoke(ctx context.Context, req Request, endpoint string, refreshToken Secret) error {
	if refreshToken.IsZero() {
		return configError(ReasonInvalidProviderRequest, "no token to revoke")
	}
	req.RefreshToken = refreshToken // planned like the refresh that token would make; masked in messages
	call, perr := plan(req)
	if perr != nil {
		return perr
	}
	if call.preset.Body != BodyForm {
		return configError(ReasonInvalidProviderRequest, "provider %s has no RFC 7009 revocation endpoint", call.preset.Name)
	}
	revocationURL, perr := parseEndpoint(endpoint, req.AllowInsecureHTTP)
	if perr != nil {
		return perr
	}
	if !sameOrigin(revocationURL, call.endpoint) {
		return configError(ReasonInvalidEndpoint, "revocation endpoint %s is not on the token endpoint's host %s",
			redactURL(revocationURL), call.endpoint.Host)
	}
	call.endpoint, call.revoking = revocationURL, refreshToken
	a, m, perr := c.send(ctx, call, newMasker(req))
	if perr != nil {
		return perr
	}
	if a.status >= 200 && a.status <= 299 {
		return nil
	}
	return call.failure(a, nil, m, c.clock.Now())
}

// sameOrigin: the same scheme and host (port included), as a browser's origin.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// DefaultRevocationEndpoint is the RFC 7009 endpoint that the provider's server serves
// beside tokenEndpoint, "" when none is known (the provider documents none, or the token
// endpoint does not have the path the server's software gives it).
func DefaultRevocationEndpoint(name Name, tokenEndpoint string) string {
	p, ok := PresetFor(name)
	if !ok || p.Revocation == (RevocationPath{}) {
		return ""
	}
	base, found := strings.CutSuffix(tokenEndpoint, p.Revocation.TokenSuffix)
	if !found {
		return ""
	}
	return base + p.Revocation.RevocationSuffix
}

// RevocationPath says where a server's software puts its revocation endpoint relative
// to its token endpoint: the token endpoint's path ends in TokenSuffix, which is replaced
// by RevocationSuffix.
type RevocationPath struct {
	TokenSuffix      string
	RevocationSuffix string
}

var (
	// djangoOAuthToolkit serves RevokeTokenView at o/revoke_token/ beside o/token/.
	djangoOAuthToolkit = RevocationPath{TokenSuffix: "/o/token/", RevocationSuffix: "/o/revoke_token/"}
	// keycloak serves /protocol/openid-connect/revoke beside .../token (Keycloak 12+).
	keycloak = RevocationPath{TokenSuffix: "/protocol/openid-connect/token", RevocationSuffix: "/protocol/openid-connect/revoke"}
)
