package sandbox

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// keycloakOfflineScope makes Keycloak issue an offline refresh token (refresh_expires_in 0).
const keycloakOfflineScope = "offline_access"

// banficoDefaultScope is what Banfico's realm grants a client_credentials call that asks
// for no scope: the document's request sends none and its answer has this scope and an
// offline refresh token (seeds/002, providers.md §3), so the realm's default client scopes
// include offline_access.
const banficoDefaultScope = "profile offline_access email"

const banficoIssuer = "https://auth.fakebank.example/auth/realms/provider"

// banficoForm is Keycloak's wording; its client authenticates by Basic only.
var banficoForm = formContract{
	onlyClientAuth: &requiredClientAuth{providers.ClientAuthBasic,
		answer{http.StatusUnauthorized, "unauthorized_client", "Basic authentication with client_id and client_secret is mandatory"}},
	// Keycloak's own answer to a wrong client secret.
	badClient:        answer{http.StatusUnauthorized, "unauthorized_client", "Invalid client or Invalid client credentials"},
	missingGrant:     "Missing form parameter: grant_type",
	unsupportedGrant: "Unsupported grant_type",
	refusedGrants: map[string]answer{
		"password": {http.StatusBadRequest, "unauthorized_client", "Client not allowed for direct access grants"},
	},
}

// serveBanfico is Banfico's Keycloak realm (seeds/002): Basic client authentication only,
// client_credentials, RS256 JWT access tokens whose exp agrees with expires_in, and an
// offline refresh token (refresh_expires_in 0) when the scope granted has offline_access:
// asked for, or the realm's default scopes when the call asks for none. The refresh token
// is reused, or rotated on every refresh when SetRevokeRefreshToken is on.
func serveBanfico(s *Server, b *bank, call *formCall) reply {
	form, grant, client, fail := call.form, call.grant, call.client, call.fail

	var refresh string
	scope := scopeOr(form.Get("scope"), cmp.Or(b.defaultScope, b.creds.Scope))
	switch grant {
	case "client_credentials":
		if !b.scopeAllowed(scope) {
			return fail(http.StatusBadRequest, "invalid_scope", "Invalid scopes: requested scope is not allowed")
		}
		if slices.Contains(strings.Fields(scope), keycloakOfflineScope) {
			refresh = b.newRefreshToken(client.id, "", scope)
		}
	case "refresh_token":
		rt := b.lookupRefreshToken(form.Get("refresh_token"), client.id)
		if rt == nil {
			return fail(http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
		}
		refresh, scope = form.Get("refresh_token"), rt.scope
		if b.revokeRefreshToken {
			refresh = b.rotateRefreshToken(rt)
		}
	default:
		return call.refuseGrant(b)
	}

	access, err := s.banficoAccessToken(client.id, scope, b.lifetime)
	if err != nil {
		return fail(http.StatusInternalServerError, "server_error", "cannot sign token")
	}
	b.recordAccessToken(s, grant, client.id, access, refresh)

	resp := map[string]any{
		"access_token":       access,
		"expires_in":         seconds(b.lifetime),
		"refresh_expires_in": 0,
		"token_type":         "Bearer",
		"not-before-policy":  0,
		"session_state":      uuid.NewString(),
		"scope":              scope,
	}
	if refresh != "" {
		resp["refresh_token"] = refresh
	}
	return reply{status: http.StatusOK, body: resp}.withCall(grant, client.method)
}

// banficoAccessToken is a Keycloak service-account access token: an RS256 JWT.
func (s *Server) banficoAccessToken(clientID, scope string, lifetime time.Duration) (string, error) {
	now := s.now()
	return jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"exp":           now.Add(lifetime).Unix(),
		"iat":           now.Unix(),
		"jti":           uuid.NewString(),
		"iss":           banficoIssuer,
		"aud":           clientID,
		"sub":           "service-account-" + clientID,
		"typ":           "Bearer",
		"azp":           clientID,
		"scope":         scope,
		"clientId":      clientID,
		"session_state": uuid.NewString(),
	}).SignedString(s.jwtKey)
}

// BanficoPublicKey verifies Banfico access tokens (RS256), for tests that check them.
func (s *Server) BanficoPublicKey() any { return &s.jwtKey.PublicKey }
