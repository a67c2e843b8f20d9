package sandbox

import (
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// parseForm reads an RFC 6749 form body strictly: the right media type, and no parameter
// sent twice (§3.2) but RFC 8707 §2's resource, which names one target each time.
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
		if len(v) > 1 && k != resourceParameter {
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

// requiredHeaderProblem says what is wrong with r's copy of the required header h; "" when
// it is right. Where the bank takes h's value as a query parameter instead (MBANQ's
// tenantIdentifier), a call may send either, and what it sends must match.
func requiredHeaderProblem(b *bank, r *http.Request, h providers.Header) string {
	query, hasQuery := b.tenantQuery[h.Name]
	if values, sent := r.URL.Query()[query]; hasQuery && sent {
		if len(values) != 1 || values[0] != h.Value {
			return "query parameter " + query + " does not match this banking instance"
		}
		if r.Header.Get(h.Name) == "" {
			return ""
		}
	}
	if r.Header.Get(h.Name) == "" {
		return "header " + h.Name + " is required"
	}
	if !hasHeader(r, h.Name, h.Value) {
		return "header " + h.Name + " does not match this banking instance"
	}
	return ""
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

// answer is an RFC 6749 error reply in a bank's own words.
type answer struct {
	status      int
	code        string
	description string
}

// formContract is how a form-encoded bank words its answers to what every such bank
// checks: how the client authenticates, and a grant the bank does not serve.
type formContract struct {
	// onlyClientAuth, when set, is the one client authentication the bank accepts.
	onlyClientAuth *requiredClientAuth
	// badClient answers client credentials that are not the bank's.
	badClient answer
	// missingGrant describes the invalid_request of a call without grant_type.
	missingGrant string
	// unsupportedGrant describes unsupported_grant_type; {grant} stands for the grant.
	unsupportedGrant string
	// refusedGrants are grants the bank knows and refuses, with its answer.
	refusedGrants map[string]answer
}

// requiredClientAuth is a client authentication a bank insists on, and its answer to another.
type requiredClientAuth struct {
	method  providers.ClientAuthentication
	refusal answer
}

// formCall is how every form-encoded fake starts: the parsed form, the grant asked for,
// how the client authenticated, and failures that record both.
type formCall struct {
	form   url.Values
	grant  string
	client clientAuth
}

// beginFormCall parses the form and authenticates the client by contract (the token
// endpoint's or the revocation endpoint's), including the headers the bank requires; a
// non-nil reply is the rejection to send.
func beginFormCall(b *bank, r *http.Request, body []byte, contract formContract) (*formCall, *reply) {
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
	call := &formCall{form: form, grant: grant, client: client}
	if rejected, ok := call.checkClient(b, r, contract); !ok {
		return nil, &rejected
	}
	return call, nil
}

func (c *formCall) checkClient(b *bank, r *http.Request, contract formContract) (reply, bool) {
	for _, h := range b.creds.Headers {
		if problem := requiredHeaderProblem(b, r, h); problem != "" {
			return c.fail(http.StatusBadRequest, "invalid_request", problem), false
		}
	}
	if only := contract.onlyClientAuth; only != nil && c.client.method != only.method {
		return c.answer(only.refusal), false
	}
	if !b.knowsClient(c.client) {
		return c.answer(contract.badClient), false
	}
	return reply{}, true
}

// refuseGrant answers a grant the bank does not serve, as the bank words it.
func (c *formCall) refuseGrant(b *bank) reply {
	if c.grant == "" {
		return c.fail(http.StatusBadRequest, "invalid_request", b.form.missingGrant)
	}
	if refused, ok := b.form.refusedGrants[c.grant]; ok {
		return c.answer(refused)
	}
	return c.fail(http.StatusBadRequest, "unsupported_grant_type", strings.ReplaceAll(b.form.unsupportedGrant, "{grant}", c.grant))
}

func (c *formCall) answer(a answer) reply { return c.fail(a.status, a.code, a.description) }

// fail is an RFC 6749 error reply recorded with the call's grant and client authentication.
func (c *formCall) fail(status int, code, description string) reply {
	return oauthError(status, code, description).withCall(c.grant, c.client.method)
}
