package sandbox

import (
	"net/http"
)

// rakbankForm is the wording of RAKBANK's internal client auth.
var rakbankForm = formContract{
	badClient:        answer{http.StatusUnauthorized, "invalid_client", "client authentication failed"},
	missingGrant:     "grant_type is required",
	unsupportedGrant: "grant_type must be one of authorization_code, password, client_credentials, refresh_token",
	refusedGrants: map[string]answer{
		"authorization_code": {http.StatusBadRequest, "unsupported_grant_type", "authorization_code needs a browser; not served here"},
	},
}

// serveRAKBank is RAKBANK's internal client auth, /v1/int_client_auth/token (seeds/000):
// a form, client credentials by Basic or the form, scope required, the response schema's
// exact fields with token_type "bearer", and a refresh token for client_credentials and
// password alike, as the document's client_credentials example answer carries one. The
// refresh token is reused, not rotated.
func serveRAKBank(s *Server, b *bank, call *formCall) reply {
	form, grant, client, fail := call.form, call.grant, call.client, call.fail
	scope := form.Get("scope")
	if scope == "" {
		return fail(http.StatusBadRequest, "invalid_request", "scope is required")
	}
	if !b.scopeAllowed(scope) {
		return fail(http.StatusBadRequest, "invalid_scope", "requested scope is not allowed for this client")
	}

	var refresh string
	switch grant {
	case "client_credentials":
		refresh = b.newRefreshToken(client.id, "", scope)
	case "password":
		username, ok := b.resourceOwner(form)
		if !ok {
			return fail(http.StatusBadRequest, "invalid_grant", "invalid resource owner credentials")
		}
		refresh = b.newRefreshToken(client.id, username, scope)
	case "refresh_token":
		refresh = form.Get("refresh_token")
		if b.lookupRefreshToken(refresh, client.id) == nil {
			return fail(http.StatusBadRequest, "invalid_grant", "refresh token is invalid, expired or revoked")
		}
	default:
		return call.refuseGrant(b)
	}

	return reply{status: http.StatusOK, body: map[string]any{
		"token_type":    "bearer",
		"access_token":  b.issueAccessToken(s, grant, client.id, refresh),
		"expires_in":    seconds(b.lifetime),
		"scope":         scope,
		"refresh_token": refresh,
	}}.withCall(grant, client.method)
}
