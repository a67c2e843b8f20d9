package sandbox

import (
	"net/http"
	"net/url"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// mbanqForm is MBANQ's wording; its client authenticates in the form only.
var mbanqForm = formContract{
	onlyClientAuth: &requiredClientAuth{providers.ClientAuthBody,
		answer{http.StatusUnauthorized, "invalid_client", "client_id and client_secret are required form fields"}},
	badClient:        answer{http.StatusUnauthorized, "invalid_client", "Bad client credentials"},
	missingGrant:     "grant_type is required",
	unsupportedGrant: "Unsupported grant type: {grant}",
}

// MBANQ's tenant: the header its authentication page names, or the query parameter its
// authentication tutorial sends instead (providers.md §4; seeds/003 shows the header's
// meaning, not its name).
const (
	mbanqTenantHeader = "tenantId"
	mbanqTenantQuery  = "tenantIdentifier"
)

// serveMbanq is MBANQ's /oauth/token (seeds/003): the tenant (header tenantId or query
// parameter tenantIdentifier) and device headers, client credentials in the form only, the
// password grant with a refresh token that is reused (not rotated), and an mfa_required
// challenge for users who must give a second factor.
func serveMbanq(s *Server, b *bank, call *formCall) reply {
	form, grant, client, fail := call.form, call.grant, call.client, call.fail
	scope := form.Get("scope")
	if !b.scopeAllowed(scope) {
		return fail(http.StatusBadRequest, "invalid_scope", "requested scope is not allowed")
	}

	var refresh string
	switch grant {
	case "password":
		username, ok := b.resourceOwner(form)
		if !ok {
			return fail(http.StatusBadRequest, "invalid_grant", "Bad credentials")
		}
		if b.secondFactorUsers[username] {
			rep := fail(http.StatusForbidden, "mfa_required", "Two-factor authentication required: an OTP was sent to the user's registered device")
			rep.body.(map[string]string)["mfa_token"] = newOpaqueToken(b.slug + "-mfa")
			return rep
		}
		refresh = b.newRefreshToken(client.id, username, scope)
	case "refresh_token":
		refresh = form.Get("refresh_token")
		if b.lookupRefreshToken(refresh, client.id) == nil {
			return fail(http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
		}
		// MBANQ runs on Apache Fineract, whose Spring OAuth2 token services drop the access
		// tokens issued earlier with a refresh token when it is used (providers.md §4).
		b.revokeAccessTokensIssuedWith(refresh)
	default:
		return call.refuseGrant(b)
	}

	resp := map[string]any{
		"access_token":  b.issueAccessToken(s, grant, client.id, refresh),
		"token_type":    "bearer",
		"refresh_token": refresh,
		"expires_in":    seconds(b.lifetime),
	}
	if scope != "" {
		resp["scope"] = scope
	}
	return reply{status: http.StatusOK, body: resp}.withCall(grant, client.method)
}

// TokenURLWithTenantQuery is MBANQ's token URL with the tenant as the query parameter
// tenantIdentifier, as MBANQ's authentication tutorial sends it.
func (s *Server) TokenURLWithTenantQuery(name providers.Name) string {
	var tenant string
	s.withBank(name, func(b *bank) {
		for _, h := range b.creds.Headers {
			if h.Name == mbanqTenantHeader {
				tenant = h.Value
			}
		}
	})
	return s.TokenURL(name) + "?" + url.Values{mbanqTenantQuery: {tenant}}.Encode()
}
