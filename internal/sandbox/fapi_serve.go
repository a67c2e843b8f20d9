package sandbox

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// assertionLeeway is the clock skew Keycloak allows a client assertion's exp and iat.
const assertionLeeway = 5 * time.Second

// jwtBearerAssertionType is RFC 7523 §2.2's client_assertion_type, spelled here rather
// than taken from the client, so that a misspelling there is refused.
const jwtBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionAlgorithms are the JWS algorithms the realm takes for a client assertion: the
// ones FAPI 2.0 allows that Keycloak's Signed JWT authenticator serves.
var assertionAlgorithms = []string{"RS256", "PS256", "ES256"}

// serveSignedJWT is a Keycloak realm whose client authenticates with the "Signed JWT"
// authenticator only: the assertion must be signed by the registered key (RS256, PS256 or
// ES256), name the client as iss and sub, be addressed to this token endpoint or the realm,
// be unexpired, and carry a jti never seen before. Tokens are then Keycloak's, as Banfico's.
func serveSignedJWT(s *Server, b *bank, r *http.Request, body []byte) reply {
	call, bad := beginFAPICall(b, r, body, providers.ClientAuthPrivateKeyJWT)
	if bad != nil {
		return *bad
	}
	form, fail := call.form, call.fail
	switch {
	case refuseSecrets(r, form):
		return fail(http.StatusUnauthorized, "unauthorized_client", "This client authenticates with a signed JWT only; no client secret is configured")
	case form.Get("client_assertion_type") != jwtBearerAssertionType:
		return fail(http.StatusBadRequest, "invalid_client", "Parameter client_assertion_type is missing or not jwt-bearer")
	}
	if description := s.checkAssertion(b, r, form); description != "" {
		return fail(http.StatusUnauthorized, "unauthorized_client", "Client authentication with signed JWT failed: "+description)
	}
	return serveBanfico(s, b, call)
}

// beginFAPICall parses the form of a call whose client authenticates by method, with no
// secret; the client is the endpoint's one, once the caller has checked its proof.
func beginFAPICall(b *bank, r *http.Request, body []byte, method providers.ClientAuthentication) (*formCall, *reply) {
	form, bad := parseForm(r, body)
	if bad != nil {
		return nil, bad
	}
	return &formCall{form: form, grant: form.Get("grant_type"), client: clientAuth{method: method, id: b.creds.ClientID}}, nil
}

// checkAssertion verifies the client assertion as Keycloak's JWT client authenticator
// does; it returns "" when it is good, and why not otherwise.
func (s *Server) checkAssertion(b *bank, r *http.Request, form url.Values) string {
	client, id := b.fapi, b.creds.ClientID
	if got := form.Get("client_id"); got != "" && got != id {
		return "client_id does not name the assertion's client"
	}
	claims := jwt.MapClaims{}
	var kid string
	_, err := jwt.ParseWithClaims(form.Get("client_assertion"), claims,
		func(t *jwt.Token) (any, error) {
			kid, _ = t.Header["kid"].(string)
			return client.publicKeyFor(kid)
		},
		jwt.WithValidMethods(assertionAlgorithms), jwt.WithTimeFunc(s.now), jwt.WithLeeway(assertionLeeway),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithIssuer(id), jwt.WithSubject(id))
	if err != nil {
		// golang-jwt's own words: which check failed, never the token.
		return err.Error()
	}
	audiences, _ := claims.GetAudience()
	accepted := []string{s.TokenURL(b.name), "https://" + r.Host + b.path, strings.TrimSuffix(s.baseURL+b.path, "/protocol/openid-connect/token")}
	if !slices.ContainsFunc(audiences, func(a string) bool { return slices.Contains(accepted, a) }) {
		return "Invalid token audience"
	}
	jti, _ := claims["jti"].(string)
	if jti == "" {
		return "Missing ID on the token"
	}
	now := s.now()
	maps.DeleteFunc(client.usedJTIs, func(_ string, exp time.Time) bool { return now.After(exp.Add(assertionLeeway)) })
	if _, used := client.usedJTIs[jti]; used {
		return "Token reuse detected"
	}
	exp, _ := claims.GetExpirationTime()
	client.usedJTIs[jti] = exp.Time
	client.accepted = append(client.accepted, AcceptedAssertion{KeyID: kid, At: now})
	return ""
}

// serveTLSClientAuth is an open-banking authorization server whose client authenticates by
// the certificate it presents in the TLS handshake (RFC 8705 §2.1): the server's TLS layer
// checks the chain against its CA; here the client_id must be the registered one and the
// certificate's subject the one registered for it. Access tokens are JWTs bound to the
// certificate (cnf x5t#S256, RFC 8705 §3.1).
func serveTLSClientAuth(s *Server, b *bank, r *http.Request, body []byte) reply {
	call, bad := beginFAPICall(b, r, body, providers.ClientAuthTLS)
	if bad != nil {
		return *bad
	}
	form, grant, fail := call.form, call.grant, call.fail
	switch {
	case refuseSecrets(r, form) || form.Has("client_assertion"):
		return fail(http.StatusBadRequest, "invalid_request", "this client authenticates by tls_client_auth only")
	case r.TLS == nil || len(r.TLS.PeerCertificates) == 0:
		return fail(http.StatusUnauthorized, "invalid_client", "no client certificate was presented")
	case form.Get("client_id") != b.creds.ClientID:
		return fail(http.StatusUnauthorized, "invalid_client", "unknown client_id")
	case r.TLS.PeerCertificates[0].Subject.String() != b.fapi.subject:
		return fail(http.StatusUnauthorized, "invalid_client", "the client certificate's subject is not the one registered (tls_client_auth_subject_dn)")
	case grant != "client_credentials":
		return fail(http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is served")
	}
	scope := scopeOr(form.Get("scope"), b.creds.Scope)
	if !b.scopeAllowed(scope) {
		return fail(http.StatusBadRequest, "invalid_scope", "the client may not have this scope")
	}
	thumbprint := x5tS256(r.TLS.PeerCertificates[0])
	now := s.now()
	access, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": s.baseURL + "/mtls", "sub": b.creds.ClientID, "client_id": b.creds.ClientID, "scope": scope,
		"iat": now.Unix(), "exp": now.Add(b.lifetime).Unix(), "jti": uuid.NewString(),
		"cnf": map[string]string{"x5t#S256": thumbprint},
	}).SignedString(s.jwtKey)
	if err != nil {
		return fail(http.StatusInternalServerError, "server_error", "cannot sign token")
	}
	b.recordAccessToken(s, grant, b.creds.ClientID, access, "")
	b.accessTokens[access].certificateThumbprint = thumbprint
	return reply{status: http.StatusOK, body: map[string]any{
		"access_token": access, "token_type": "Bearer", "expires_in": seconds(b.lifetime), "scope": scope,
	}}.withCall(grant, call.client.method)
}
