package sandbox

import (
	"net/http"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// paymobForm is Django OAuth Toolkit's wording.
var paymobForm = formContract{
	badClient:     answer{http.StatusUnauthorized, "invalid_client", ""},
	missingGrant:  "Missing grant type.",
	refusedGrants: map[string]answer{string(providers.GrantClientCredentials): {http.StatusBadRequest, "unauthorized_client", ""}},
}

// servePaymob is Paymob payouts' Django OAuth Toolkit: client credentials by Basic or the
// form, the password grant, and refresh tokens rotated on every use: a spent one gets
// invalid_grant, and the access token it was issued with is revoked.
func servePaymob(s *Server, b *bank, call *formCall) reply {
	form, grant, client, fail := call.form, call.grant, call.client, call.fail
	scope := scopeOr(form.Get("scope"), b.creds.Scope)
	if !b.scopeAllowed(scope) {
		return fail(http.StatusBadRequest, "invalid_scope", "")
	}

	var username string
	switch providers.GrantType(grant) {
	case providers.GrantPassword:
		username = form.Get("username")
		if username != b.creds.Username || form.Get("password") != b.creds.Password || username == "" {
			return fail(http.StatusBadRequest, "invalid_grant", "Invalid credentials given.")
		}
	case providers.GrantRefreshToken:
		old := form.Get("refresh_token")
		rt := b.lookupRefreshToken(old, client.id)
		if rt == nil {
			return fail(http.StatusBadRequest, "invalid_grant", "")
		}
		// Rotation with no grace period, as Django OAuth Toolkit does by default.
		rt.used = true
		username, scope = rt.username, rt.scope
		for _, at := range b.accessTokens {
			if at.refreshToken == old {
				at.revoked = true
			}
		}
	default:
		return call.refuseGrant(b)
	}

	access, refresh, lifetime := b.issue(s, providers.GrantType(grant), client.id, username, scope, true)
	b.accessTokens[access].refreshToken = refresh
	return reply{status: http.StatusOK, body: map[string]any{
		"access_token":  access,
		"expires_in":    seconds(lifetime),
		"refresh_token": refresh,
		"scope":         scope,
		"token_type":    "Bearer",
	}}.withCall(grant, client.method)
}
