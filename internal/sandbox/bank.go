package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// maxRequestBytes caps a token request body; real gateways reject far smaller.
const maxRequestBytes = 64 << 10

// BankCredentials are what a fake bank accepts: fixture values, not secrets.
type BankCredentials struct {
	ClientID     string
	ClientSecret string
	// Username and Password are empty for banks without a password grant.
	Username string
	Password string
	// Scope is a scope the bank grants; each of its words is allowed. Empty allows any.
	Scope string
	// Headers are required with these exact values (MBANQ's tenant and device headers).
	Headers []providers.Header
	// Metadata is RAKBANK partner's oauth_metadata that its scope requires.
	Metadata map[string]string
}

// ProviderCredentials converts to the providers package's type.
func (c BankCredentials) ProviderCredentials() providers.Credentials {
	return providers.Credentials{
		ClientID:     c.ClientID,
		ClientSecret: providers.Secret(c.ClientSecret),
		Username:     c.Username,
		Password:     providers.Secret(c.Password),
	}
}

func (c BankCredentials) clone() BankCredentials {
	c.Headers = slices.Clone(c.Headers)
	c.Metadata = maps.Clone(c.Metadata)
	return c
}

// Call is one token call as the fake saw it. It holds no credential or token.
type Call struct {
	At time.Time
	// Grant is the grant_type sent, as sent (possibly empty or unknown).
	Grant providers.GrantType
	// ClientAuthentication is how the client authenticated, "" when it did not.
	ClientAuthentication providers.ClientAuthentication
	Status               int
	// ClientID is the client the call named, however it named it and whoever answered it
	// (the gateway's 429 included; see callerOf); "" when it named none.
	ClientID string
	// Error is the error code answered (error or response_code); "" when accepted.
	Error string
	// Reason says why the call was refused, in the fake's words.
	Reason string
	// MsgID is RAKBANK partner's MsgId header.
	MsgID string
	// Metadata is the oauth_metadata RAKBANK partner accepted.
	Metadata map[string]string
	// InteractionID is the x-fapi-interaction-id the call carried, "" when none; values of
	// a header sent more than once are joined by ", ".
	InteractionID string
	// Resource holds each RFC 8707 resource parameter of a form body, in order; Audience
	// each audience parameter.
	Resource []string
	Audience []string
	// Listener is the OpenFinance listener the call reached: ListenerMain or ListenerMTLS;
	// Host the host:port the call named (its URL's, as sent in the Host header).
	Listener, Host string
	// AssertionAudience is the aud of a client assertion OpenFinance read (several
	// separated by spaces); "" when none.
	AssertionAudience string
}

// Accepted reports whether a token was issued.
func (c Call) Accepted() bool { return c.Status == http.StatusOK }

type accessToken struct {
	clientID  string
	expiresAt time.Time
	revoked   bool
	// refreshToken is the one it was issued with: Paymob and MBANQ revoke the access tokens
	// issued with a refresh token when it is used, and DOT when it is revoked.
	refreshToken string
	// chain is the grant chain of that refresh token; "" when issued without one.
	chain string
	// certificateThumbprint is the x5t#S256 of the client certificate a bound token is bound
	// to (RFC 8705 §3.1); "" for a bearer token.
	certificateThumbprint string
}

type refreshToken struct {
	clientID string
	username string
	scope    string
	// used marks a rotated-away token; revoked marks RevokeRefreshTokens, a revocation
	// (RFC 7009) or reuse detection.
	used    bool
	revoked bool
	// chain names the grant the token descends from: rotation keeps it, a primary grant
	// starts a new one. Reuse detection revokes a whole chain.
	chain string
}

func (rt *refreshToken) usable() bool { return !rt.used && !rt.revoked }

// bank is one fake endpoint's state. Server.mu guards it.
type bank struct {
	name providers.Name
	slug string
	path string
	// serve decides the answer to a call; it runs under Server.mu.
	serve func(s *Server, b *bank, r *http.Request, body []byte) reply
	// serveForm, for a form-encoded bank instead of serve, answers a call whose client
	// passed the checks of form, the bank's wording of its client and grant refusals.
	serveForm func(s *Server, b *bank, call *formCall) reply
	form      formContract
	// revocation is the bank's RFC 7009 endpoint; nil where the real server has none.
	revocation *revocationEndpoint
	// protectedAPI is the path of the API a workload calls with the token; "" for none.
	protectedAPI string
	// tenantQuery names a query parameter that may carry the value of a required header
	// instead (MBANQ's tenantIdentifier for tenantId).
	tenantQuery map[string]string

	creds BankCredentials
	// otherClients are clients registered beside creds' (AddClient): client id -> secret.
	otherClients map[string]string
	// defaultScope is granted when a call asks for none; creds.Scope when empty. Keycloak
	// applies the realm's default client scopes.
	defaultScope     string
	extraScopes      []string
	secretGeneration int
	lifetime         time.Duration

	calls       []Call
	revocations []Revocation
	// issued counts access tokens by grant_type as sent.
	issued        map[string]int
	accessTokens  map[string]*accessToken
	refreshTokens map[string]*refreshToken

	// reusedRefreshTokens counts spent (rotated-away) refresh tokens sent again.
	reusedRefreshTokens int
	// revocationEndsEverySession: SetRevocationEndsEverySession.
	revocationEndsEverySession bool
	// revokeRefreshToken is Keycloak's realm setting of that name: refresh tokens rotate
	// and a reused one revokes its whole chain (RFC 9700 §4.14.2).
	revokeRefreshToken bool
	// answerDelay holds each answer back after the call is decided, so that a client
	// killed meanwhile leaves the bank having acted on a call it never heard back from.
	answerDelay   time.Duration
	callsInFlight int
	fault         Fault

	unavailable    bool
	rateLimitedFor time.Duration
	// rateLimitedClients are the clients the gateway answers 429, with their Retry-After.
	rateLimitedClients map[string]time.Duration
	secondFactorUsers  map[string]bool
	msgIDs             map[string]bool
	// partnerReturnsRefreshToken: RAKBANK partner's 200 also carries a refresh_token.
	partnerReturnsRefreshToken bool
	protectedAPIRefusals       int

	// fapi is the registered client of a FAPI endpoint (fapi.go); nil for the five banks.
	fapi *fapiClient
	// openFinance is OpenFinance's state (openfinance.go); nil for every other bank.
	openFinance *openFinanceServer
	// handlerOf, when set, serves the bank's path instead of its token endpoint alone.
	handlerOf func(s *Server, b *bank) http.Handler
}

func newBanks(lifetimes map[providers.Name]time.Duration) map[providers.Name]*bank {
	banks := map[providers.Name]*bank{
		providers.RAKBank: {
			slug: "rakbank", path: "/rakbank/v1/int_client_auth/token", serveForm: serveRAKBank, form: rakbankForm,
			creds: fixtureClientAndUser("rakbank", "accounts payments"),
		},
		providers.RAKBankPartner: {
			slug: "rakbank-partner", path: "/rakbank-partner/v1/partner_auth/token", serve: serveRAKBankPartner,
			creds: withMetadata(fixtureClient("rakbank-partner", "accounts"),
				// The document's own example values.
				map[string]string{"account_id": "0188000049916", "emirates_id": "500000000006190"}),
		},
		providers.Banfico: {
			slug: "banfico", path: "/banfico/auth/realms/provider/protocol/openid-connect/token", serveForm: serveBanfico, form: banficoForm,
			revocation:   keycloakRevocation("/banfico/auth/realms/provider/protocol/openid-connect/revoke"),
			creds:        fixtureClient("banfico", "profile email"),
			defaultScope: banficoDefaultScope,
			extraScopes:  []string{keycloakOfflineScope},
		},
		providers.Mbanq: {
			slug: "mbanq", path: "/mbanq/oauth/token", serveForm: serveMbanq, form: mbanqForm,
			tenantQuery: map[string]string{mbanqTenantHeader: mbanqTenantQuery},
			creds: withHeaders(fixtureClientAndUser("mbanq", ""),
				// The IP and device header names are not public: these are fixture names.
				providers.Header{Name: mbanqTenantHeader, Value: "demo-tenant"},
				providers.Header{Name: "X-Device-IP", Value: "192.0.2.10"},
				providers.Header{Name: "X-Device-Id", Value: "demo-device-0001"}),
		},
		providers.Paymob: {
			slug: "paymob", path: "/paymob/api/secure/o/token/", serveForm: servePaymob, form: paymobForm,
			revocation: djangoOAuthToolkitRevocation("/paymob/api/secure/o/revoke_token/"),
			creds: BankCredentials{
				// Characters that need RFC 6749 §2.3.1 encoding, as Paymob's own example has.
				ClientID: "demo-paymob-client", ClientSecret: "demo-paymob-client-secret:1+1",
				Username: "demo-paymob-user", Password: "demo-paymob-p@ss%word&1",
				Scope: "read write",
			},
		},
	}
	for _, b := range banks {
		b.protectedAPI = "/" + b.slug + "/api/accounts"
	}
	maps.Copy(banks, fapiBanks())
	maps.Copy(banks, openFinanceBanks())
	for name, b := range banks {
		b.name = name
		b.secretGeneration = 1
		b.lifetime = DefaultLifetime
		if d, ok := lifetimes[name]; ok && d > 0 {
			b.lifetime = d
		}
		b.issued = map[string]int{}
		b.otherClients = map[string]string{}
		b.accessTokens = map[string]*accessToken{}
		b.refreshTokens = map[string]*refreshToken{}
		b.secondFactorUsers = map[string]bool{}
		b.msgIDs = map[string]bool{}
	}
	return banks
}

// fixtureClient is a bank's fixture client: "demo-<slug>-client", with a secret of the
// same pattern. These are fixture values, not secrets.
func fixtureClient(slug, scope string) BankCredentials {
	return BankCredentials{ClientID: "demo-" + slug + "-client", ClientSecret: "demo-" + slug + "-client-secret-1", Scope: scope}
}

// fixtureClientAndUser adds the fixture resource owner of the password grant.
func fixtureClientAndUser(slug, scope string) BankCredentials {
	c := fixtureClient(slug, scope)
	c.Username, c.Password = "demo-"+slug+"-user", "demo-"+slug+"-password-1"
	return c
}

func withMetadata(c BankCredentials, metadata map[string]string) BankCredentials {
	c.Metadata = metadata
	return c
}

func withHeaders(c BankCredentials, headers ...providers.Header) BankCredentials {
	c.Headers = headers
	return c
}

// reply is a fake's answer, and what it records about the call.
type reply struct {
	status int
	header http.Header
	// body is JSON-encoded unless html or empty is set.
	body  any
	html  string
	empty bool
	// revocation is what a revocation call did, for Server.Revocations.
	revocation Revocation

	call Call
}

// endpoint is one of a bank's endpoints: how it decides a call, and where it records it.
type endpoint struct {
	// logName is added to the bank's name in the log: "" for the token endpoint.
	logName string
	decide  func(s *Server, b *bank, r *http.Request, body []byte, readErr error) reply
	record  func(b *bank, rep reply)
}

var tokenEndpoint = endpoint{
	decide: (*Server).decide,
	record: func(b *bank, rep reply) { b.calls = append(b.calls, rep.call) },
}

func (s *Server) handler(b *bank, e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))

		caller := callerOf(r, body)
		s.mu.Lock()
		b.callsInFlight++
		rep := e.decide(s, b, r, body, readErr)
		rep.call.At, rep.call.ClientID = s.now(), caller
		rep.call.InteractionID = interactionIDOf(r)
		rep.call.Resource, rep.call.Audience = targetsOf(r, body)
		rep.call.Status = rep.status
		e.record(b, rep)
		delay, fault := b.answerDelay, b.fault
		s.mu.Unlock()
		defer s.callAnswered(b)
		if b.fapi != nil || b.openFinance != nil {
			echoInteractionID(w, rep.call.InteractionID)
		}
		time.Sleep(delay)
		if writeSpoiled(w, r, fault, rep) {
			return
		}

		if s.logf != nil {
			c := rep.call
			s.logf("%s%s: %d grant=%q %s %s", b.name, e.logName, c.Status, c.Grant, c.Error, c.Reason)
		}
		switch {
		case rep.html != "":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(rep.status)
			_, _ = io.WriteString(w, rep.html)
		case rep.empty:
			w.WriteHeader(rep.status)
		default:
			writeJSON(w, rep.status, rep.header, rep.body)
		}
	})
}

// decide applies what every bank's gateway does before the bank's own rules.
func (s *Server) decide(b *bank, r *http.Request, body []byte, readErr error) reply {
	if rep, refused := b.gateway(r, body, readErr, func() (reply, bool) { return b.fault.answerInsteadOfBank(body) }); refused {
		return rep
	}
	if b.serveForm == nil {
		return b.serve(s, b, r, body)
	}
	call, rejected := beginFormCall(b, r, body, b.form)
	if rejected != nil {
		return *rejected
	}
	return b.serveForm(s, b, call)
}

// gateway is what answers before the bank: the method, the body's size, a fault that
// answers instead of the bank (faultAnswer), an outage and a rate limit, of the bank or of
// the calling client.
func (b *bank) gateway(r *http.Request, body []byte, readErr error, faultAnswer func() (reply, bool)) (reply, bool) {
	switch {
	case r.Method != http.MethodPost:
		return reply{status: http.StatusMethodNotAllowed, header: http.Header{"Allow": {http.MethodPost}},
			body: map[string]string{"error": "invalid_request", "error_description": "this endpoint takes POST only"},
			call: Call{Error: "method_not_allowed", Reason: "method " + r.Method}}, true
	case readErr != nil:
		return reply{status: http.StatusRequestEntityTooLarge,
			body: map[string]string{"error": "invalid_request", "error_description": "request body too large"},
			call: Call{Error: "invalid_request", Reason: "request body too large"}}, true
	}
	if rep, ok := faultAnswer(); ok {
		return rep, true
	}
	switch {
	case b.unavailable:
		return reply{status: http.StatusServiceUnavailable,
			html: "<html><body><h1>503 Service Unavailable</h1>No server is available to handle this request.</body></html>",
			call: Call{Error: "unavailable", Reason: "bank set unavailable"}}, true
	case b.rateLimitedFor > 0:
		secs := int((b.rateLimitedFor + time.Second - 1) / time.Second)
		return reply{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {strconv.Itoa(secs)}},
			body: map[string]string{"error": "too_many_requests", "error_description": "rate limit exceeded"},
			call: Call{Error: "too_many_requests", Reason: "bank set rate limited"}}, true
	}
	return b.rateLimitedCaller(callerOf(r, body))
}

// oauthError is an RFC 6749 §5.2 error answer.
func oauthError(status int, code, description string) reply {
	body := map[string]string{"error": code}
	if description != "" {
		body["error_description"] = description
	}
	return reply{status: status, body: body, call: Call{Error: code, Reason: description}}
}

// withCall records the grant and client authentication on a reply.
func (r reply) withCall(grant string, auth providers.ClientAuthentication) reply {
	r.call.Grant = providers.GrantType(grant)
	r.call.ClientAuthentication = auth
	return r
}

func writeJSON(w http.ResponseWriter, status int, header http.Header, body any) {
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// issueAccessToken issues an opaque access token to clientID, with refresh ("" for none).
func (b *bank) issueAccessToken(s *Server, grant, clientID, refresh string) string {
	access := newOpaqueToken(b.slug + "-at")
	b.recordAccessToken(s, grant, clientID, access, refresh)
	return access
}

// recordAccessToken counts an issue and remembers the token for AccessTokenValid, with the
// refresh token it was issued with and that token's grant chain.
func (b *bank) recordAccessToken(s *Server, grant, clientID, access, refresh string) {
	b.issued[grant]++
	at := &accessToken{clientID: clientID, expiresAt: s.now().Add(b.lifetime), refreshToken: refresh}
	if rt, ok := b.refreshTokens[refresh]; ok && refresh != "" {
		at.chain = rt.chain
	}
	b.accessTokens[access] = at
}

// newRefreshToken issues a refresh token that starts a grant chain of its own.
func (b *bank) newRefreshToken(clientID, username, scope string) string {
	rt := newOpaqueToken(b.slug + "-rt")
	b.refreshTokens[rt] = &refreshToken{clientID: clientID, username: username, scope: scope, chain: rt}
	return rt
}

// lookupRefreshToken returns the usable refresh token issued to clientID, or nil. A spent
// one sent again is counted as a reuse, and handled as the bank's reuse detection says.
func (b *bank) lookupRefreshToken(token, clientID string) *refreshToken {
	rt, ok := b.refreshTokens[token]
	if ok && rt.used && rt.clientID == clientID {
		b.noteReuse(rt)
	}
	if !ok || !rt.usable() || rt.clientID != clientID {
		return nil
	}
	return rt
}

// resourceOwner is the username of a password grant whose username and password are the
// bank's fixture user's; ok is false for any other (or when the bank has no user).
func (b *bank) resourceOwner(form url.Values) (username string, ok bool) {
	username = form.Get("username")
	return username, username != "" && username == b.creds.Username && form.Get("password") == b.creds.Password
}

// scopeAllowed checks each requested word against the bank's grantable scopes.
func (b *bank) scopeAllowed(requested string) bool {
	allowed := append(strings.Fields(b.creds.Scope), b.extraScopes...)
	if len(strings.Fields(b.creds.Scope)) == 0 {
		return true
	}
	for _, w := range strings.Fields(requested) {
		if !slices.Contains(allowed, w) {
			return false
		}
	}
	return true
}

func newOpaqueToken(prefix string) string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return "fake-" + prefix + "-" + hex.EncodeToString(b)
}

func seconds(d time.Duration) int { return int(d / time.Second) }
