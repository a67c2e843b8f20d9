package sandbox

import (
	"net/http"
	"strconv"
)

// paymobForm is Django OAuth Toolkit's wording.
var paymobForm = formContract{
	badClient:     answer{http.StatusUnauthorized, "invalid_client", ""},
	missingGrant:  "Missing grant type.",
	refusedGrants: map[string]answer{"client_credentials": {http.StatusBadRequest, "unauthorized_client", ""}},
}

// servePaymob is Paymob payouts' Django OAuth Toolkit (seeds/004): client credentials by
// Basic or the form, the password grant, and refresh tokens rotated on every use within
// their grant chain: a spent one gets invalid_grant, and the access token it was issued
// with is revoked at once (DOT's default, providers.md §5).
func servePaymob(s *Server, b *bank, call *formCall) reply {
	form, grant, client, fail := call.form, call.grant, call.client, call.fail
	scope := scopeOr(form.Get("scope"), b.creds.Scope)
	if !b.scopeAllowed(scope) {
		return fail(http.StatusBadRequest, "invalid_scope", "")
	}

	var refresh string
	switch grant {
	case "password":
		username, ok := b.resourceOwner(form)
		if !ok {
			return fail(http.StatusBadRequest, "invalid_grant", "Invalid credentials given.")
		}
		// A new password grant leaves earlier tokens valid and starts a grant chain.
		refresh = b.newRefreshToken(client.id, username, scope)
	case "refresh_token":
		old := form.Get("refresh_token")
		rt := b.lookupRefreshToken(old, client.id)
		if rt == nil {
			return fail(http.StatusBadRequest, "invalid_grant", "")
		}
		// Rotation with no grace period, as Django OAuth Toolkit does by default.
		b.revokeAccessTokensIssuedWith(old)
		refresh, scope = b.rotateRefreshToken(rt), rt.scope
	default:
		return call.refuseGrant(b)
	}

	access := b.issueAccessToken(s, grant, client.id, refresh)
	return reply{status: http.StatusOK, body: map[string]any{
		"access_token": access,
		// The response table (seeds/004) types expires_in as a String.
		"expires_in":    strconv.Itoa(seconds(b.lifetime)),
		"refresh_token": refresh,
		"scope":         scope,
		"token_type":    "Bearer",
	}}.withCall(grant, client.method)
}
