package sandbox

import (
	"net/http"

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

// serveMbanq is MBANQ's /oauth/token: the tenant and device headers, client credentials
// in the form only, the password grant with a refresh token that is reused (not rotated),
// and an mfa_required challenge for users who must give a second factor.
func serveMbanq(s *Server, b *bank, call *formCall) reply {
	form, grant, client, fail := call.form, call.grant, call.client, call.fail
	scope := form.Get("scope")
	if !b.scopeAllowed(scope) {
		return fail(http.StatusBadRequest, "invalid_scope", "requested scope is not allowed")
	}

	var refresh, username string
	switch providers.GrantType(grant) {
	case providers.GrantPassword:
		username = form.Get("username")
		if username != b.creds.Username || form.Get("password") != b.creds.Password || username == "" {
			return fail(http.StatusBadRequest, "invalid_grant", "Bad credentials")
		}
		if b.secondFactorUsers[username] {
			rep := fail(http.StatusForbidden, "mfa_required", "Two-factor authentication required: an OTP was sent to the user's registered device")
			rep.body.(map[string]string)["mfa_token"] = newOpaqueToken(b.slug + "-mfa")
			return rep
		}
	case providers.GrantRefreshToken:
		refresh = form.Get("refresh_token")
		rt := b.lookupRefreshToken(refresh, client.id)
		if rt == nil {
			return fail(http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
		}
		username = rt.username
	default:
		return call.refuseGrant(b)
	}

	access, newRefresh, lifetime := b.issue(s, providers.GrantType(grant), client.id, username, scope, refresh == "")
	if newRefresh != "" {
		refresh = newRefresh
	}
	resp := map[string]any{
		"access_token":  access,
		"token_type":    "bearer",
		"refresh_token": refresh,
		"expires_in":    seconds(lifetime),
	}
	if scope != "" {
		resp["scope"] = scope
	}
	return reply{status: http.StatusOK, body: resp}.withCall(grant, client.method)
}
