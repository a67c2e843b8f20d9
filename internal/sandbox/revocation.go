package sandbox

import (
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// RFC 7009 token revocation, at the banks whose real server serves it: Django OAuth
// Toolkit's /o/revoke_token/ (Paymob) and Keycloak's .../protocol/openid-connect/revoke
// (Banfico). RAKBANK, RAKBANK partner and MBANQ document none, and the FAPI endpoints
// are not asked for one, so they have none.

// Revocation is one revocation call as the bank saw it. It holds no token.
type Revocation struct {
	At time.Time
	// TokenTypeHint is token_type_hint as sent; "" when absent.
	TokenTypeHint string
	Status        int
	// InteractionID is the x-fapi-interaction-id the call carried, "" when none.
	InteractionID string
	// Revoked says whether the call made a token stop working.
	Revoked bool
	// Reason says what the bank did, or why it refused, in the fake's words.
	Reason string
}

// revocationEndpoint is how a bank's server revokes.
type revocationEndpoint struct {
	path string
	// contract authenticates the client as the token endpoint does (the same client
	// authenticator serves both at DOT and Keycloak), with RFC 6749 §5.2's invalid_client
	// for a client that fails (RFC 7009 §2.2.1).
	contract formContract
	// revokeRefreshToken is what revoking a usable refresh token does at this server.
	revokeRefreshToken func(b *bank, rt *refreshToken, token string)
	refreshRevokedWord string
}

// djangoOAuthToolkitRevocation is DOT's /o/revoke_token/: revoking a refresh token revokes
// it and the access token issued with it (DOT's RefreshToken.revoke); clients authenticate
// by Basic or the form, as at its token endpoint.
func djangoOAuthToolkitRevocation(path string) *revocationEndpoint {
	return &revocationEndpoint{path: path, contract: paymobForm,
		revokeRefreshToken: func(b *bank, rt *refreshToken, token string) {
			rt.revoked = true
			b.revokeAccessTokensIssuedWith(token)
		},
		refreshRevokedWord: "refresh token and the access token issued with it revoked"}
}

// keycloakRevocation is Keycloak's .../protocol/openid-connect/revoke: revoking an offline
// refresh token ends its offline session, so every refresh and access token of that grant
// chain stops working. Its client authenticates by Basic only, as at Banfico's token endpoint.
func keycloakRevocation(path string) *revocationEndpoint {
	onlyBasic := answer{http.StatusUnauthorized, "invalid_client", "Basic authentication with client_id and client_secret is mandatory"}
	return &revocationEndpoint{path: path,
		contract: formContract{onlyClientAuth: &requiredClientAuth{providers.ClientAuthBasic, onlyBasic},
			badClient: answer{http.StatusUnauthorized, "invalid_client", "Invalid client or Invalid client credentials"}},
		revokeRefreshToken: func(b *bank, rt *refreshToken, _ string) { b.revokeChain(rt.chain) },
		refreshRevokedWord: "offline session ended: every token of its grant chain revoked"}
}

var revocationCalls = endpoint{
	logName: " revocation",
	decide:  (*Server).decideRevocation,
	record: func(b *bank, rep reply) {
		rv := rep.revocation
		rv.At, rv.Status, rv.Reason, rv.InteractionID = rep.call.At, rep.status, rep.call.Reason, rep.call.InteractionID
		b.revocations = append(b.revocations, rv)
	},
}

// decideRevocation answers as RFC 7009 §2.2 says: 200 with no body when the token was
// revoked and also when it was unknown or already invalid (§2.2: the client cannot act on
// the difference); 400 unsupported_token_type for a hint the server does not know.
func (s *Server) decideRevocation(b *bank, r *http.Request, body []byte, readErr error) reply {
	sent, _ := url.ParseQuery(string(body))
	hint := sent.Get("token_type_hint")
	rep := s.revocationReply(b, r, body, readErr, hint)
	rep.revocation.TokenTypeHint = hint
	return rep
}

func (s *Server) revocationReply(b *bank, r *http.Request, body []byte, readErr error, hint string) reply {
	if rep, refused := b.gateway(r, body, readErr, b.fault.answerToRevocation); refused {
		return rep
	}
	call, rejected := beginFormCall(b, r, body, b.revocation.contract)
	if rejected != nil {
		return *rejected
	}
	token := call.form.Get("token")
	switch {
	case token == "":
		return call.fail(http.StatusBadRequest, "invalid_request", "token is required")
	case hint != "" && !slices.Contains([]string{"access_token", "refresh_token"}, hint):
		return call.fail(http.StatusBadRequest, "unsupported_token_type", "token_type_hint must be access_token or refresh_token")
	}
	revoked, reason := b.revoke(s.now(), token, call.client.id)
	return reply{status: http.StatusOK, empty: true, call: Call{Reason: reason}, revocation: Revocation{Revoked: revoked}}
}

// revoke makes token stop working when it is a working token of clientID, and says what
// it did. The hint is not needed: refresh and access tokens never share a value here.
func (b *bank) revoke(now time.Time, token, clientID string) (bool, string) {
	if rt, ok := b.refreshTokens[token]; ok {
		switch {
		case rt.clientID != clientID:
			return false, "refresh token of another client: not revoked"
		case !rt.usable():
			return false, "refresh token already invalid"
		}
		if b.revocationEndsEverySession {
			b.revokeEverySessionOf(rt.clientID, rt.username)
			return true, "every session of the client's user ended"
		}
		b.revocation.revokeRefreshToken(b, rt, token)
		return true, b.revocation.refreshRevokedWord
	}
	if at, ok := b.accessTokens[token]; ok {
		switch {
		case at.clientID != clientID:
			return false, "access token of another client: not revoked"
		case at.revoked || !now.Before(at.expiresAt):
			return false, "access token already invalid"
		}
		at.revoked = true
		return true, "access token revoked"
	}
	return false, "unknown token"
}

// SetRevocationEndsEverySession makes revoking a refresh token at bank end every session
// of its user for the client, as Keycloak's TokenRevocationEndpoint does (revokeClient:
// UserSessionManager.revokeOfflineToken(user, client) and every client session of the
// user detached). For a client_credentials client the user is its service account, so
// every grant of the client ends, not just the revoked token's chain. Off by default,
// where a revocation ends the token's own chain.
func (s *Server) SetRevocationEndsEverySession(name providers.Name, on bool) {
	s.withBank(name, func(b *bank) { b.revocationEndsEverySession = on })
}

// RevocationURL is bank's RFC 7009 revocation endpoint; "" for a bank without one
// (RAKBANK, RAKBANK partner, MBANQ, the FAPI endpoints).
func (s *Server) RevocationURL(name providers.Name) string {
	b, ok := s.banks[name]
	if !ok || b.revocation == nil {
		return ""
	}
	return s.baseURL + b.revocation.path
}

// Revocations is bank's log of revocation calls, oldest first.
func (s *Server) Revocations(name providers.Name) (out []Revocation) {
	s.withBank(name, func(b *bank) { out = slices.Clone(b.revocations) })
	return out
}
