package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// OpenFinance is an Open Finance authorization server held to the FAPI 2.0 Security
// Profile, as the UAE's Open Finance standards require of banks: its issuer has a path, it
// publishes RFC 8414 metadata, serves its token endpoint on the main listener and, in
// mtls_endpoint_aliases (RFC 8705 §5), on a second listener that demands a client
// certificate. Clients authenticate with private_key_jwt (PS256 or ES256) or
// tls_client_auth; access tokens are bound to the certificate presented (cnf x5t#S256, RFC
// 8705 §3) and live 10 minutes by default. It refuses what FAPI 2.0 §5.3.2.1 and §5.3.3.4
// refuse: an assertion whose aud is not the issuer, a replayed jti, RS256, and a
// certificate-authenticated client at the endpoint where no certificate is asked for.
const OpenFinance providers.Name = "OpenFinance"

// OpenFinanceLifetime is OpenFinance's access token lifetime unless Options.Lifetimes says
// otherwise: the UAE standards' ten-minute maximum.
const OpenFinanceLifetime = 10 * time.Minute

// Listeners a call to OpenFinance can reach, as Call.Listener records them.
const (
	ListenerMain = "main"
	ListenerMTLS = "mtls"
)

// openFinanceIssuerPath is the issuer's path: RFC 8414 §3.1 inserts the well-known suffix before it.
const openFinanceIssuerPath = "/open-finance"

// openFinanceAlgorithms are the client assertion algorithms FAPI 2.0 §5.4.1 admits that
// the server takes: PS256 and ES256 (never RS256).
var openFinanceAlgorithms = []string{"PS256", "ES256"}

// openFinanceServer is OpenFinance's state beyond a bank's. Server.mu guards it.
type openFinanceServer struct {
	mtls     *http.Server
	mtlsLn   net.Listener
	mtlsDone chan struct{}
	// mtlsHost is the host:port the aliases name; MoveOpenFinanceTokenEndpoint changes its
	// name (127.0.0.1 to localhost), so that the alias is on another host.
	mtlsHost string
	// generation numbers the token endpoints' paths: moving them makes the old ones 404.
	generation int
	// assertionKey is the registered client's RSA key (PS256) and its kid; publicKeys are
	// the keys the server verifies assertions with.
	assertionKeyPEM []byte
	assertionKeyID  string
	publicKeys      []any
	subject         string
	usedJTIs        map[string]time.Time
	metadataReads   int
}

type mtlsListenerKey struct{}

// openFinanceBanks is OpenFinance's entry in the bank table; startOpenFinance completes it.
func openFinanceBanks() map[providers.Name]*bank {
	return map[providers.Name]*bank{
		OpenFinance: {
			slug: "open-finance", path: openFinanceIssuerPath + "/", serve: serveOpenFinance,
			creds:       BankCredentials{ClientID: "demo-open-finance-client", Scope: "accounts payments"},
			extraScopes: []string{"offline_access"},
			handlerOf:   (*Server).openFinanceHandler,
		},
	}
}

// startOpenFinance registers OpenFinance's client, serves its metadata on mux and starts
// its mTLS listener on another port of the main listener's address.
func (s *Server) startOpenFinance(mux *http.ServeMux, mainAddr net.Addr, hosts []string, opts Options) error {
	b := s.banks[OpenFinance]
	if _, set := opts.Lifetimes[OpenFinance]; !set {
		b.lifetime = OpenFinanceLifetime
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	block, _ := pem.Decode(s.clientCertPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	of := &openFinanceServer{
		assertionKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), assertionKeyID: "demo-open-finance-key-1",
		publicKeys: []any{&key.PublicKey}, subject: cert.Subject.String(), usedJTIs: map[string]time.Time{}, mtlsDone: make(chan struct{}),
	}
	b.openFinance = of
	mux.HandleFunc("/.well-known/oauth-authorization-server"+openFinanceIssuerPath, s.serveOpenFinanceMetadata)

	host, _, _ := net.SplitHostPort(mainAddr.String())
	if of.mtlsLn, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
		return err
	}
	of.mtlsHost = urlHost(of.mtlsLn.Addr().(*net.TCPAddr), hosts)
	mtlsMux := http.NewServeMux()
	mtlsMux.Handle(openFinanceIssuerPath+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.openFinanceHandler(b).ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), mtlsListenerKey{}, true)))
	}))
	of.mtls = &http.Server{
		Handler: mtlsMux,
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.certificate,
			// The alias is where certificate clients call: no certificate, no handshake.
			ClientAuth: tls.RequireAndVerifyClientCert,
			ClientCAs:  s.ca.Pool(),
		},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go func() {
		defer close(of.mtlsDone)
		_ = of.mtls.ServeTLS(of.mtlsLn, "", "")
	}()
	return nil
}

// openFinanceHandler sends a call to the token or the revocation endpoint by its path;
// either records it as the bank's other endpoints do.
func (s *Server) openFinanceHandler(b *bank) http.Handler {
	token, revoke := s.handler(b, tokenEndpoint), s.handler(b, openFinanceRevocation)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/revoke") {
			revoke.ServeHTTP(w, r)
			return
		}
		token.ServeHTTP(w, r)
	})
}

// closeOpenFinance stops the mTLS listener.
func (s *Server) closeOpenFinance() {
	if of := s.banks[OpenFinance].openFinance; of != nil && of.mtls != nil {
		_ = of.mtls.Close()
		<-of.mtlsDone
	}
}

func (of *openFinanceServer) tokenPath(mtls bool) string {
	listener := "as"
	if mtls {
		listener = "mtls"
	}
	path := openFinanceIssuerPath + "/" + listener + "/token"
	if of.generation > 0 {
		path += "-" + strconv.Itoa(of.generation+1)
	}
	return path
}

// OpenFinanceIssuer is OpenFinance's issuer identifier.
func (s *Server) OpenFinanceIssuer() string { return s.baseURL + openFinanceIssuerPath }

// OpenFinanceTokenURL is OpenFinance's token endpoint now: the main listener's, or with
// mtls the alias on the listener that demands a certificate.
func (s *Server) OpenFinanceTokenURL(mtls bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.openFinanceTokenURL(mtls)
}

func (s *Server) openFinanceTokenURL(mtls bool) string {
	of := s.banks[OpenFinance].openFinance
	if mtls {
		return "https://" + of.mtlsHost + of.tokenPath(true)
	}
	return s.baseURL + of.tokenPath(false)
}

// MoveOpenFinanceTokenEndpoint moves both token endpoints to new paths, and the mTLS
// alias to another host name of the same listener (localhost instead of 127.0.0.1, or
// back), as a bank does that moves its endpoints: the old URLs answer 404 from now on, and
// the metadata names the new ones.
func (s *Server) MoveOpenFinanceTokenEndpoint() {
	s.mu.Lock()
	defer s.mu.Unlock()
	of := s.banks[OpenFinance].openFinance
	of.generation++
	host, port, _ := net.SplitHostPort(of.mtlsHost)
	if host == "localhost" {
		host = "127.0.0.1"
	} else {
		host = "localhost"
	}
	of.mtlsHost = net.JoinHostPort(host, port)
}

// OpenFinanceAssertionKey is the PEM private key (PKCS #8, RSA) and kid whose public key
// OpenFinance holds for its client.
func (s *Server) OpenFinanceAssertionKey() (keyPEM []byte, keyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	of := s.banks[OpenFinance].openFinance
	return slices.Clone(of.assertionKeyPEM), of.assertionKeyID
}

// AddOpenFinanceAssertionKey registers another public key (a crypto.PublicKey: RSA for
// PS256, P-256 for ES256) beside the first.
func (s *Server) AddOpenFinanceAssertionKey(publicKey any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	of := s.banks[OpenFinance].openFinance
	of.publicKeys = append(of.publicKeys, publicKey)
}

// OpenFinanceMetadataReads counts the GETs of OpenFinance's metadata.
func (s *Server) OpenFinanceMetadataReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.banks[OpenFinance].openFinance.metadataReads
}

// serveOpenFinanceMetadata answers RFC 8414 §3.2's document. The names are RFC 8414 §2's,
// RFC 8705 §3.3's and §5's.
func (s *Server) serveOpenFinanceMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeJSON(w, http.StatusMethodNotAllowed, http.Header{"Allow": {http.MethodGet}}, map[string]string{"error": "invalid_request"})
		return
	}
	s.mu.Lock()
	of := s.banks[OpenFinance].openFinance
	of.metadataReads++
	mtlsRevoke := "https://" + of.mtlsHost + openFinanceIssuerPath + "/mtls/revoke"
	doc := map[string]any{
		"issuer":                                s.OpenFinanceIssuer(),
		"token_endpoint":                        s.openFinanceTokenURL(false),
		"revocation_endpoint":                   s.baseURL + openFinanceIssuerPath + "/as/revoke",
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt", "tls_client_auth"},
		"token_endpoint_auth_signing_alg_values_supported": openFinanceAlgorithms,
		"tls_client_certificate_bound_access_tokens":       true,
		"grant_types_supported":                            []string{"client_credentials", "refresh_token"},
		"mtls_endpoint_aliases": map[string]string{
			"token_endpoint":      s.openFinanceTokenURL(true),
			"revocation_endpoint": mtlsRevoke,
		},
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, nil, doc)
}

// serveOpenFinance is OpenFinance's token endpoint on either listener.
func serveOpenFinance(s *Server, b *bank, r *http.Request, body []byte) reply {
	of := b.openFinance
	mtls, _ := r.Context().Value(mtlsListenerKey{}).(bool)
	listener := ListenerMain
	if mtls {
		listener = ListenerMTLS
	}
	if r.URL.Path != of.tokenPath(mtls) {
		rep := oauthError(http.StatusNotFound, "not_found", "no token endpoint at this path")
		rep.call.Listener, rep.call.Host, rep.call.Reason = listener, r.Host, "no token endpoint at "+r.URL.Path
		return rep
	}
	rep := s.decideOpenFinance(b, r, body, mtls)
	rep.call.Listener, rep.call.Host = listener, r.Host
	return rep
}

// openFinanceClient authenticates the client as FAPI 2.0 §5.3.2.1 and §5.3.3.4 say; it
// returns the method, the certificate the call presented (nil on the main listener, which
// asks for none) and the rejection to send, if any.
func (s *Server) openFinanceClient(b *bank, r *http.Request, form url.Values, mtls bool) (providers.ClientAuthentication, *x509.Certificate, string, *reply) {
	of := b.openFinance
	var cert *x509.Certificate
	if mtls && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		cert = r.TLS.PeerCertificates[0]
	}
	refuse := func(method providers.ClientAuthentication, status int, code, description string) (providers.ClientAuthentication, *x509.Certificate, string, *reply) {
		rep := oauthError(status, code, description).withCall(form.Get("grant_type"), method)
		rep.call.Reason = description
		return method, cert, "", &rep
	}
	if refuseSecrets(r, form) {
		return refuse("", http.StatusUnauthorized, "invalid_client", "this client has no secret: private_key_jwt or tls_client_auth only")
	}
	if !form.Has("client_assertion") && !form.Has("client_assertion_type") {
		// tls_client_auth (RFC 8705 §2.1): the certificate is the proof.
		switch {
		case cert == nil:
			return refuse(providers.ClientAuthTLS, http.StatusUnauthorized, "invalid_client",
				"no client certificate: a tls_client_auth client calls mtls_endpoint_aliases.token_endpoint")
		case form.Get("client_id") != b.creds.ClientID:
			return refuse(providers.ClientAuthTLS, http.StatusUnauthorized, "invalid_client", "unknown client_id")
		case cert.Subject.String() != of.subject:
			return refuse(providers.ClientAuthTLS, http.StatusUnauthorized, "invalid_client", "the certificate's subject is not the registered tls_client_auth_subject_dn")
		}
		return providers.ClientAuthTLS, cert, "", nil
	}
	if form.Get("client_assertion_type") != jwtBearerAssertionType {
		return refuse(providers.ClientAuthPrivateKeyJWT, http.StatusUnauthorized, "invalid_client", "client_assertion_type is not jwt-bearer")
	}
	audience, problem := s.checkOpenFinanceAssertion(b, form)
	if problem != "" {
		method, c, _, rep := refuse(providers.ClientAuthPrivateKeyJWT, http.StatusUnauthorized, "invalid_client", problem)
		rep.call.AssertionAudience = audience
		return method, c, audience, rep
	}
	return providers.ClientAuthPrivateKeyJWT, cert, audience, nil
}

// checkOpenFinanceAssertion verifies a private_key_jwt assertion: PS256 or ES256 by a
// registered key, iss and sub the client, aud the issuer (FAPI 2.0 §5.3.2.1: the issuer
// identifier, nothing else), unexpired, with a jti never seen. It returns the aud sent and
// "" when the assertion is good, or why not.
func (s *Server) checkOpenFinanceAssertion(b *bank, form url.Values) (string, string) {
	of, id := b.openFinance, b.creds.ClientID
	if got := form.Get("client_id"); got != "" && got != id {
		return "", "client_id does not name the assertion's client"
	}
	raw := form.Get("client_assertion")
	var claims jwt.MapClaims
	var lastErr error
	for _, key := range of.publicKeys {
		claims = jwt.MapClaims{}
		_, lastErr = jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return key, nil },
			jwt.WithValidMethods(openFinanceAlgorithms), jwt.WithTimeFunc(s.now), jwt.WithLeeway(assertionLeeway),
			jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithIssuer(id), jwt.WithSubject(id))
		if lastErr == nil {
			break
		}
	}
	audiences, _ := claims.GetAudience()
	audience := strings.Join(audiences, " ")
	if lastErr != nil {
		return audience, "client assertion refused: " + lastErr.Error()
	}
	if len(audiences) != 1 || audiences[0] != s.OpenFinanceIssuer() {
		return audience, fmt.Sprintf("the assertion's aud must be the issuer %s alone", s.OpenFinanceIssuer())
	}
	jti, _ := claims["jti"].(string)
	if jti == "" {
		return audience, "the assertion has no jti"
	}
	now := s.now()
	maps.DeleteFunc(of.usedJTIs, func(_ string, exp time.Time) bool { return now.After(exp.Add(assertionLeeway)) })
	if _, used := of.usedJTIs[jti]; used {
		return audience, "the assertion's jti was used before"
	}
	exp, _ := claims.GetExpirationTime()
	of.usedJTIs[jti] = exp.Time
	return audience, ""
}

// decideOpenFinance authenticates the client and issues a JWT access token, bound to the
// certificate presented on the mTLS listener; a refresh token when offline_access is asked.
func (s *Server) decideOpenFinance(b *bank, r *http.Request, body []byte, mtls bool) reply {
	form, bad := parseForm(r, body)
	if bad != nil {
		return *bad
	}
	grant := form.Get("grant_type")
	method, cert, audience, rejected := s.openFinanceClient(b, r, form, mtls)
	if rejected != nil {
		return *rejected
	}
	fail := func(status int, code, description string) reply {
		rep := oauthError(status, code, description).withCall(grant, method)
		rep.call.Reason, rep.call.AssertionAudience = description, audience
		return rep
	}
	scope := scopeOr(form.Get("scope"), b.creds.Scope)
	refresh := ""
	switch grant {
	case "client_credentials":
		if !b.scopeAllowed(scope) {
			return fail(http.StatusBadRequest, "invalid_scope", "the client may not have this scope")
		}
		if slices.Contains(strings.Fields(scope), "offline_access") {
			refresh = b.newRefreshToken(b.creds.ClientID, "", scope)
		}
	case "refresh_token":
		rt := b.lookupRefreshToken(form.Get("refresh_token"), b.creds.ClientID)
		if rt == nil {
			return fail(http.StatusBadRequest, "invalid_grant", "the refresh token is unknown, revoked or not this client's")
		}
		scope, refresh = rt.scope, form.Get("refresh_token")
	default:
		return fail(http.StatusBadRequest, "unsupported_grant_type", "client_credentials and refresh_token only")
	}
	now := s.now()
	claims := jwt.MapClaims{
		"iss": s.OpenFinanceIssuer(), "sub": b.creds.ClientID, "client_id": b.creds.ClientID, "scope": scope,
		"iat": now.Unix(), "exp": now.Add(b.lifetime).Unix(), "jti": uuid.NewString(),
	}
	if cert != nil {
		sum := sha256.Sum256(cert.Raw)
		claims["cnf"] = map[string]string{"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])}
	}
	access, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(s.jwtKey)
	if err != nil {
		return fail(http.StatusInternalServerError, "server_error", "cannot sign token")
	}
	b.recordAccessToken(s, grant, b.creds.ClientID, access, refresh)
	answer := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": seconds(b.lifetime), "scope": scope}
	if refresh != "" {
		answer["refresh_token"] = refresh
	}
	rep := reply{status: http.StatusOK, body: answer}.withCall(grant, method)
	rep.call.AssertionAudience = audience
	return rep
}

// openFinanceRevocation is OpenFinance's RFC 7009 endpoint: the client authenticates as at
// the token endpoint; revoking a refresh token ends its grant chain.
var openFinanceRevocation = endpoint{
	logName: " revocation",
	decide: func(s *Server, b *bank, r *http.Request, body []byte, readErr error) reply {
		if rep, refused := b.gateway(r, body, readErr, func() (reply, bool) { return reply{}, false }); refused {
			return rep
		}
		mtls, _ := r.Context().Value(mtlsListenerKey{}).(bool)
		form, bad := parseForm(r, body)
		if bad != nil {
			return *bad
		}
		if _, _, _, rejected := s.openFinanceClient(b, r, form, mtls); rejected != nil {
			return *rejected
		}
		rv := Revocation{TokenTypeHint: form.Get("token_type_hint")}
		if rt, ok := b.refreshTokens[form.Get("token")]; ok && rt.usable() {
			b.revokeChain(rt.chain)
			rv.Revoked = true
		}
		return reply{status: http.StatusOK, empty: true, revocation: rv, call: Call{Reason: "revoked"}}
	},
	record: revocationCalls.record,
}
