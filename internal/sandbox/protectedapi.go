package sandbox

import (
	"net/http"
	"strings"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// The protected API is what a workload does with the token: GET /<slug>/api/accounts
// with the bank's access token as a Bearer token (RFC 6750 §2.1). It is the bank's
// resource server, not its token endpoint, so the token endpoint's faults and outages do
// not touch it: it answers by AccessTokenValid alone.

func (s *Server) protectedAPIHandler(b *bank) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeJSON(w, http.StatusMethodNotAllowed, nil, map[string]string{"error": "invalid_request"})
			return
		}
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		hasBearer := strings.EqualFold(scheme, "Bearer") && token != ""
		if hasBearer && s.AccessTokenValid(b.name, token) && s.presentsBoundCertificate(b.name, token, r) {
			writeJSON(w, http.StatusOK, nil, map[string]any{"accounts": []any{}})
			return
		}
		s.withBank(b.name, func(b *bank) { b.protectedAPIRefusals++ })
		if !hasBearer {
			// RFC 6750 §3.1: a request without credentials gets no error code.
			writeJSON(w, http.StatusUnauthorized, http.Header{"Www-Authenticate": {`Bearer realm="` + b.slug + `"`}}, map[string]string{})
			return
		}
		writeJSON(w, http.StatusUnauthorized, http.Header{"Www-Authenticate": {`Bearer realm="` + b.slug + `", error="invalid_token"`}},
			map[string]string{"error": "invalid_token"})
	})
}

// presentsBoundCertificate is RFC 8705 §3's check by the protected resource: a token bound
// to a certificate is accepted only over mutual TLS with that certificate (its x5t#S256 the
// token's cnf); a bearer token needs none. A mismatch is RFC 6750's invalid_token.
func (s *Server) presentsBoundCertificate(name providers.Name, accessToken string, r *http.Request) bool {
	var bound string
	s.withBank(name, func(b *bank) {
		if at, ok := b.accessTokens[accessToken]; ok {
			bound = at.certificateThumbprint
		}
	})
	if bound == "" {
		return true
	}
	return r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && x5tS256(r.TLS.PeerCertificates[0]) == bound
}

// ProtectedAPIURL is bank's protected API, GET with "Authorization: Bearer <token>";
// "" for an endpoint that has none (SignedJWTRealm). MTLSServer's takes a bound token only
// with its certificate.
func (s *Server) ProtectedAPIURL(name providers.Name) string {
	b, ok := s.banks[name]
	if !ok || b.protectedAPI == "" {
		return ""
	}
	return s.baseURL + b.protectedAPI
}

// ProtectedAPIRefusals is how many calls bank's protected API refused (401).
func (s *Server) ProtectedAPIRefusals(name providers.Name) (n int) {
	s.withBank(name, func(b *bank) { n = b.protectedAPIRefusals })
	return n
}

// BoundCertificateThumbprint is the x5t#S256 of the certificate bank bound accessToken to
// when it issued it, as the bank recorded it; "" for a bearer or unknown token.
func (s *Server) BoundCertificateThumbprint(name providers.Name, accessToken string) (thumbprint string) {
	s.withBank(name, func(b *bank) {
		if at, ok := b.accessTokens[accessToken]; ok {
			thumbprint = at.certificateThumbprint
		}
	})
	return thumbprint
}
