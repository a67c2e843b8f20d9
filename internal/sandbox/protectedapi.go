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
		if hasBearer && s.AccessTokenValid(b.name, token) {
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

// ProtectedAPIURL is bank's protected API, GET with "Authorization: Bearer <token>";
// "" for an endpoint that has none (the FAPI ones).
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
