package sandbox

import (
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// parseForm reads an RFC 6749 form body strictly: the right media type, and no parameter
// sent twice (§3.2).
func parseForm(r *http.Request, body []byte) (url.Values, *reply) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		rep := oauthError(http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return nil, &rep
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		rep := oauthError(http.StatusBadRequest, "invalid_request", "malformed form body")
		return nil, &rep
	}
	for k, v := range form {
		if len(v) > 1 {
			rep := oauthError(http.StatusBadRequest, "invalid_request", "parameter "+k+" sent more than once")
			return nil, &rep
		}
	}
	return form, nil
}

// clientAuth is how a form-based call authenticated its client.
type clientAuth struct {
	method providers.ClientAuthentication
	id     string
	secret string
}

// readClientAuth finds the client's credentials in HTTP Basic (decoded per RFC 6749
// §2.3.1) or the form, refusing a call that uses both (§2.3).
func readClientAuth(r *http.Request, form url.Values) (clientAuth, *reply) {
	authz := r.Header.Get("Authorization")
	inForm := form.Has("client_secret")
	if authz == "" {
		if !form.Has("client_id") {
			return clientAuth{}, nil
		}
		return clientAuth{method: providers.ClientAuthBody, id: form.Get("client_id"), secret: form.Get("client_secret")}, nil
	}
	rawID, rawSecret, ok := r.BasicAuth()
	if !ok {
		rep := oauthError(http.StatusUnauthorized, "invalid_client", "unsupported Authorization scheme")
		return clientAuth{}, &rep
	}
	if inForm {
		rep := oauthError(http.StatusBadRequest, "invalid_request", "client authenticated by both Basic and the form")
		return clientAuth{}, &rep
	}
	id, err1 := url.QueryUnescape(rawID)
	secret, err2 := url.QueryUnescape(rawSecret)
	if err1 != nil || err2 != nil {
		rep := oauthError(http.StatusUnauthorized, "invalid_client", "Basic credentials are not form-urlencoded (RFC 6749 §2.3.1)")
		return clientAuth{}, &rep
	}
	if fid := form.Get("client_id"); fid != "" && fid != id {
		rep := oauthError(http.StatusBadRequest, "invalid_request", "client_id in the form differs from Basic")
		return clientAuth{}, &rep
	}
	return clientAuth{method: providers.ClientAuthBasic, id: id, secret: secret}, nil
}

// matches reports whether the call's client credentials are the bank's.
func (c clientAuth) matches(creds BankCredentials) bool {
	return c.id == creds.ClientID && c.secret == creds.ClientSecret && c.id != ""
}

// hasHeader reports whether r carries name with exactly value.
func hasHeader(r *http.Request, name, value string) bool {
	got := r.Header.Values(name)
	return len(got) == 1 && got[0] == value
}

func scopeOr(requested, fallback string) string {
	if s := strings.TrimSpace(requested); s != "" {
		return s
	}
	return fallback
}

// formCall is how every form-encoded fake starts: the parsed form, the grant asked for,
// how the client authenticated, and failures that record both.
type formCall struct {
	form   url.Values
	grant  string
	client clientAuth
}

// beginFormCall parses the form and the client authentication; a non-nil reply is the
// rejection to send as it is.
func beginFormCall(r *http.Request, body []byte) (*formCall, *reply) {
	form, bad := parseForm(r, body)
	if bad != nil {
		return nil, bad
	}
	grant := form.Get("grant_type")
	client, bad := readClientAuth(r, form)
	if bad != nil {
		rejected := bad.withCall(grant, "")
		return nil, &rejected
	}
	return &formCall{form: form, grant: grant, client: client}, nil
}

// fail is an RFC 6749 error reply recorded with the call's grant and client authentication.
func (c *formCall) fail(status int, code, description string) reply {
	return oauthError(status, code, description).withCall(c.grant, c.client.method)
}
