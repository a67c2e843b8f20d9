package providers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

// userAgent names the operator to the bank's logs.
const userAgent = "bank-token-operator"

// reservedHeaders are set by the request builder (or by net/http for the message framing);
// a user header must not override them. The CRD's rule on header names is generated from
// this list (hack/bankmatrix).
var reservedHeaders = []string{
	"Authorization", "Content-Type", "Content-Length", "Host", "Accept", "Transfer-Encoding",
	"Connection", HeaderIBMClientID, HeaderIBMClientSecret, HeaderMsgID,
}

// ReservedHeaders returns the names of the headers a Request's Headers must not set.
func ReservedHeaders() []string { return slices.Clone(reservedHeaders) }

// reservedParameters are the body parameters the request builder sets itself, in any
// provider's body (form or JSON), token call or revocation: a Request's Parameters must not
// set them (compared case-insensitively, so that no server that folds case is fooled). The
// CRD's rule on parameter names is generated from this list (hack/bankmatrix), and a test
// builds every provider's bodies and fails on a name missing here.
var reservedParameters = []string{
	"grant_type", "scope", "username", "password", "refresh_token",
	"client_id", "client_secret", "client_assertion_type", "client_assertion",
	"token", "token_type_hint", "oauth_metadata",
}

// ReservedTokenRequestParameters returns the names a Request's Parameters must not set.
func ReservedTokenRequestParameters() []string { return slices.Clone(reservedParameters) }

// Check refuses a Request its provider cannot serve, without touching the network: the
// same check Fetch makes before any call. Credentials, scope, headers and metadata are
// checked against the provider's preset; TLS material is not (it is read when dialling).
// A returned error is always an *Error of ClassConfiguration.
func Check(req Request) error {
	if _, err := plan(req); err != nil {
		return err
	}
	return nil
}

// call is a validated Request: everything needed to send it, decided before any I/O.
type call struct {
	preset   Preset
	endpoint *url.URL
	grant    GrantType
	// primaryGrant is the grant the caller holds a refresh token for, or is asking for.
	primaryGrant GrantType
	clientAuth   ClientAuthentication
	req          Request
	// signer signs the client assertion of PrivateKeyJWT; assertion is this call's, made
	// just before it is sent.
	signer    *assertionSigner
	assertion Secret
	// revoking, when set, makes this an RFC 7009 revocation of that refresh token, sent to
	// endpoint (the revocation endpoint) instead of a token call.
	revoking Secret
}

// where names the endpoint the call goes to, for messages.
func (c *call) where() string {
	kind := "token endpoint"
	if !c.revoking.IsZero() {
		kind = "revocation endpoint"
	}
	return fmt.Sprintf("%s %s %s", c.preset.Name, kind, redactURL(c.endpoint))
}

// isRefresh reports whether the call spends a refresh token.
func (c *call) isRefresh() bool { return c.grant == GrantRefreshToken }

// plan checks req against its provider's preset. Every failure is ClassConfiguration and
// happens without touching the network.
func plan(req Request) (*call, *Error) {
	preset, ok := PresetFor(req.Provider)
	if !ok {
		return nil, configError(ReasonInvalidProviderRequest, "unknown provider %q", req.Provider)
	}
	endpoint, err := parseEndpoint(req.TokenEndpoint, req.AllowInsecureHTTP)
	if err != nil {
		return nil, err
	}
	c := &call{preset: preset, endpoint: endpoint, req: req}

	c.primaryGrant = req.GrantType
	if c.primaryGrant == "" {
		c.primaryGrant = preset.DefaultGrant
	}
	if !preset.SupportsGrant(c.primaryGrant) {
		return nil, configError(ReasonUnsupportedGrantType, "provider %s does not support grant type %q (supported: %s)",
			preset.Name, c.primaryGrant, joinGrants(preset.Grants))
	}
	c.grant = c.primaryGrant
	if !req.RefreshToken.IsZero() {
		if !preset.SupportsRefresh {
			return nil, configError(ReasonUnsupportedGrantType, "provider %s does not support the refresh_token grant", preset.Name)
		}
		c.grant = GrantRefreshToken
	}

	c.clientAuth = req.ClientAuthentication
	if c.clientAuth == "" {
		c.clientAuth = preset.DefaultClientAuthentication
	}
	if !preset.SupportsClientAuthentication(c.clientAuth) {
		return nil, configError(ReasonInvalidProviderRequest, "provider %s does not support client authentication %q", preset.Name, c.clientAuth)
	}

	if err := c.checkCredentials(); err != nil {
		return nil, err
	}
	if err := c.checkScope(); err != nil {
		return nil, err
	}
	if err := c.checkHeaders(); err != nil {
		return nil, err
	}
	if len(req.Metadata) > 0 && !preset.AcceptsMetadata {
		return nil, configError(ReasonInvalidProviderRequest, "provider %s does not accept metadata", preset.Name)
	}
	if err := c.checkParameters(); err != nil {
		return nil, err
	}
	return c, nil
}

func parseEndpoint(raw string, allowHTTP bool) (*url.URL, *Error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || !u.IsAbs() {
		// The raw value is not echoed: a malformed URL may still carry a credential.
		return nil, configError(ReasonInvalidEndpoint, "token endpoint is not an absolute URL")
	}
	if u.User != nil {
		return nil, configError(ReasonInvalidEndpoint, "token endpoint %s must not carry credentials in the URL", stripQuery(raw))
	}
	if u.Fragment != "" {
		return nil, configError(ReasonInvalidEndpoint, "token endpoint %s must not have a fragment", stripQuery(raw))
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowHTTP {
			return nil, configError(ReasonInsecureEndpoint, "token endpoint %s is not https", stripQuery(raw))
		}
	default:
		return nil, configError(ReasonInvalidEndpoint, "token endpoint scheme %q is not https", u.Scheme)
	}
	return u, nil
}

func (c *call) checkCredentials() *Error {
	cred := c.req.Credentials
	if cred.ClientID == "" {
		return configError(ReasonInvalidProviderRequest, "client id is required")
	}
	if (c.clientAuth == ClientAuthBasic || c.clientAuth == ClientAuthHeaders) && cred.ClientSecret.IsZero() {
		return configError(ReasonInvalidProviderRequest, "client secret is required for %s client authentication", c.clientAuth)
	}
	if err := c.checkClientProof(); err != nil {
		return err
	}
	if c.clientAuth == ClientAuthHeaders && !validHeaderValues(cred.ClientID, cred.ClientSecret.Reveal()) {
		return configError(ReasonInvalidProviderRequest, "client id and secret must be printable to travel as headers")
	}
	if c.grant == GrantPassword && (cred.Username == "" || cred.Password.IsZero()) {
		return configError(ReasonInvalidProviderRequest, "the password grant needs a username and a password")
	}
	return nil
}

// checkClientProof checks the key or certificate that PrivateKeyJWT and the RFC 8705
// methods authenticate the client with, and that no other method is handed a signing key.
func (c *call) checkClientProof() *Error {
	key := c.req.Credentials.AssertionKey
	switch {
	case c.clientAuth == ClientAuthPrivateKeyJWT:
		signer, err := newAssertionSigner(key, c.endpoint.String())
		if err != nil {
			return err
		}
		c.signer = signer
	case key != AssertionKey{}:
		return configError(ReasonInvalidProviderRequest, "a client assertion key is used only with PrivateKeyJWT client authentication, not %s", c.clientAuth)
	case c.clientAuth.IsCertificateBased() && len(c.req.TLS.ClientCertificate) == 0:
		return configError(ReasonInvalidTLSConfig, "%s client authentication needs a client certificate", c.clientAuth)
	}
	return nil
}

func (c *call) checkScope() *Error { return checkScope(c.preset, c.req.Scope) }

// CheckScope refuses a scope that provider refuses (one required, a maximum length), as
// Check would: the check a request needs when its scope and its provider come from two
// objects (a BankTokenRequest naming a connection), which no admission rule sees together.
// A returned error is always an *Error of ClassConfiguration.
func CheckScope(provider Name, scope string) error {
	preset, ok := PresetFor(provider)
	if !ok {
		return configError(ReasonInvalidProviderRequest, "unknown provider %q", provider)
	}
	if err := checkScope(preset, scope); err != nil {
		return err
	}
	return nil
}

func checkScope(preset Preset, scope string) *Error {
	if preset.ScopeRequired && strings.TrimSpace(scope) == "" {
		return configError(ReasonInvalidScope, "provider %s requires a scope", preset.Name)
	}
	if preset.MaxScopeLength > 0 && utf8.RuneCountInString(scope) > preset.MaxScopeLength {
		return configError(ReasonInvalidScope, "provider %s accepts a scope of at most %d characters", preset.Name, preset.MaxScopeLength)
	}
	return nil
}

func (c *call) checkHeaders() *Error {
	if !httpguts.ValidHeaderFieldValue(c.req.InteractionID) {
		return configError(ReasonInvalidProviderRequest, "the interaction id is not a valid header value")
	}
	for _, h := range c.req.Headers {
		if !httpguts.ValidHeaderFieldName(h.Name) {
			return configError(ReasonInvalidProviderRequest, "header name %q is not a valid HTTP header name", h.Name)
		}
		if !httpguts.ValidHeaderFieldValue(h.Value) {
			return configError(ReasonInvalidProviderRequest, "header %q has an invalid value", h.Name)
		}
		for _, r := range reservedHeaders {
			if strings.EqualFold(h.Name, r) {
				return configError(ReasonInvalidProviderRequest, "header %q is set by the operator and cannot be overridden", h.Name)
			}
		}
	}
	for _, name := range c.preset.RequiredHeaders {
		if v, ok := c.header(name); ok && v != "" {
			continue
		}
		if param := c.preset.HeaderQueryParameters[name]; param != "" && c.endpoint.Query().Get(param) != "" {
			continue
		}
		return configError(ReasonInvalidProviderRequest, "provider %s requires header %q", c.preset.Name, name)
	}
	return nil
}

// checkParameters refuses extra token-request parameters the provider does not send, and
// names the operator sets itself or that RFC 6749 §8.2 does not allow.
func (c *call) checkParameters() *Error {
	if len(c.req.Parameters) > 0 && !c.preset.AcceptsTokenRequestParameters {
		return configError(ReasonInvalidProviderRequest, "provider %s does not send extra token-request parameters", c.preset.Name)
	}
	for _, p := range c.req.Parameters {
		if !validParameterName(p.Name) {
			return configError(ReasonInvalidProviderRequest, "token-request parameter name %q is not an RFC 6749 parameter name", p.Name)
		}
		if slices.ContainsFunc(reservedParameters, func(r string) bool { return strings.EqualFold(r, p.Name) }) {
			return configError(ReasonInvalidProviderRequest, "token-request parameter %q is set by the operator and cannot be overridden", p.Name)
		}
	}
	return nil
}

// validParameterName is RFC 6749 §8.2's param-name: 1*( ALPHA / DIGIT / "-" / "." / "_" ).
func validParameterName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

func (c *call) header(name string) (string, bool) {
	for _, h := range c.req.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// newHTTPRequest builds the one HTTP request of the call.
func (c *call) newHTTPRequest(ctx context.Context, messageID string) (*http.Request, *Error) {
	body, contentType, err := c.body()
	if err != nil {
		return nil, err
	}
	r, rerr := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint.String(), bytes.NewReader(body))
	if rerr != nil {
		return nil, configError(ReasonInvalidEndpoint, "token endpoint %s: cannot build request", redactURL(c.endpoint))
	}
	// User headers first, so the protocol headers below always win.
	for _, h := range c.req.Headers {
		if c.req.InteractionID != "" && strings.EqualFold(h.Name, HeaderFAPIInteractionID) {
			continue // replaced by this call's own, below: one id per call, and only one
		}
		// Set, not Add: the bank's own spelling of the name (e.g. tenantId) is kept.
		r.Header[h.Name] = []string{h.Value}
	}
	if c.req.InteractionID != "" {
		// The standards' lower-case spelling, kept as is (Set would write X-Fapi-Interaction-Id).
		r.Header[HeaderFAPIInteractionID] = []string{c.req.InteractionID}
	}
	r.Header.Set("Content-Type", contentType)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", userAgent)
	cred := c.req.Credentials
	switch c.clientAuth {
	case ClientAuthBasic:
		r.Header.Set("Authorization", "Basic "+basicCredentials(cred.ClientID, cred.ClientSecret.Reveal()))
	case ClientAuthHeaders:
		r.Header[HeaderIBMClientID] = []string{cred.ClientID}
		r.Header[HeaderIBMClientSecret] = []string{cred.ClientSecret.Reveal()}
	}
	if c.preset.MessageIDHeader != "" {
		r.Header[c.preset.MessageIDHeader] = []string{messageID}
	}
	return r, nil
}

func (c *call) body() ([]byte, string, *Error) {
	if c.preset.Body == BodyJSON {
		return c.jsonBody()
	}
	return []byte(c.form().Encode()), "application/x-www-form-urlencoded", nil
}

func (c *call) form() url.Values {
	req := c.req
	form := url.Values{}
	switch {
	case !c.revoking.IsZero():
		// RFC 7009 §2.1: the token and what kind it is; nothing of the grant.
		form.Set("token", c.revoking.Reveal())
		form.Set("token_type_hint", "refresh_token")
	case c.grant == GrantPassword:
		form.Set("username", req.Credentials.Username)
		form.Set("password", req.Credentials.Password.Reveal())
	case c.grant == GrantRefreshToken:
		form.Set("refresh_token", req.RefreshToken.Reveal())
	}
	if c.revoking.IsZero() {
		form.Set("grant_type", string(c.grant))
		if req.Scope != "" {
			form.Set("scope", req.Scope)
		}
		// Add, not Set: RFC 8707 §2 sends resource once per target.
		for _, p := range req.Parameters {
			form.Add(p.Name, p.Value)
		}
	}
	c.addClientAuthentication(form)
	return form
}

// addClientAuthentication adds the form fields of the client authentication methods that
// travel in the body; Basic and Headers travel as headers (newHTTPRequest).
func (c *call) addClientAuthentication(form url.Values) {
	req := c.req
	switch {
	case c.clientAuth == ClientAuthBody:
		form.Set("client_id", req.Credentials.ClientID)
		if !req.Credentials.ClientSecret.IsZero() {
			form.Set("client_secret", req.Credentials.ClientSecret.Reveal())
		}
	case c.clientAuth == ClientAuthPrivateKeyJWT:
		// RFC 7523 §3 makes client_id optional beside an assertion; FAPI servers want it.
		form.Set("client_id", req.Credentials.ClientID)
		form.Set("client_assertion_type", ClientAssertionType)
		form.Set("client_assertion", c.assertion.Reveal())
	case c.clientAuth.IsCertificateBased():
		// RFC 8705 §2: the certificate authenticates; client_id says whose it should be.
		form.Set("client_id", req.Credentials.ClientID)
	}
}

// partnerTokenRequest is RAKBANK partner's access_token_request schema, which forbids
// any other field.
type partnerTokenRequest struct {
	GrantType     GrantType         `json:"grant_type"`
	Scope         string            `json:"scope"`
	OAuthMetadata map[string]string `json:"oauth_metadata,omitempty"`
}

func (c *call) jsonBody() ([]byte, string, *Error) {
	b, err := json.Marshal(partnerTokenRequest{GrantType: c.grant, Scope: c.req.Scope, OAuthMetadata: c.req.Metadata})
	if err != nil {
		return nil, "", configError(ReasonInvalidProviderRequest, "cannot encode the request body")
	}
	return b, "application/json", nil
}

// basicCredentials encodes id and secret as RFC 6749 §2.3.1 says: each form-urlencoded,
// then joined and base64-encoded, so a ':' in the id cannot split it.
func basicCredentials(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

func validHeaderValues(values ...string) bool {
	for _, v := range values {
		if !httpguts.ValidHeaderFieldValue(v) {
			return false
		}
	}
	return true
}

func joinGrants(grants []GrantType) string {
	s := make([]string, len(grants))
	for i, g := range grants {
		s[i] = string(g)
	}
	return strings.Join(s, ", ")
}

// redactURL prints an endpoint without query, fragment or user info.
func redactURL(u *url.URL) string { return stripQuery(u.String()) }

func configError(reason, format string, args ...any) *Error {
	return newError(ClassConfiguration, reason, 0, format, args...)
}
