// Package sandbox runs in-process fakes of the five banks' token endpoints over real TLS.
// Each fake enforces its bank's documented contract strictly, so that a client which passes
// against it sends what the real bank expects; and each records what it accepted and
// rejected, so tests can assert it. The controller's envtest suite, the providers' tests
// and the `make demo` sandbox all use it.
//
// The credentials it accepts are fixture values ("demo-…"), not secrets.
package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// DefaultLifetime is an access token's lifetime unless Options.Lifetimes says otherwise.
const DefaultLifetime = time.Hour

// Options configure a Server. The zero value is usable.
type Options struct {
	// Lifetimes are access token lifetimes per bank; DefaultLifetime for any not listed.
	Lifetimes map[providers.Name]time.Duration
	// Now is the clock tokens are issued and checked by; default time.Now. Certificates
	// always use the real clock, since TLS verification does.
	Now func() time.Time
	// Hosts are extra names or IPs for the server certificate; the first is used in URLs.
	Hosts []string
	// Logf, when set, receives one line per token call (never a credential or token).
	Logf func(format string, args ...any)
}

// Server is a TLS listener serving every bank's token endpoint at its documented path, and
// for the five banks a protected API; Paymob and Banfico also serve RFC 7009 revocation.
type Server struct {
	now     func() time.Time
	logf    func(format string, args ...any)
	baseURL string

	ca            *CertificateAuthority
	clientCertPEM []byte
	clientKeyPEM  []byte
	jwtKey        *rsa.PrivateKey

	httpServer *http.Server
	listener   net.Listener
	done       chan struct{}

	mu    sync.Mutex
	banks map[providers.Name]*bank
	tls   tlsFaults
}

// Start serves on 127.0.0.1 at a free port.
func Start(opts Options) (*Server, error) { return StartOn("127.0.0.1:0", opts) }

// StartOn serves on addr, e.g. "127.0.0.1:8443".
func StartOn(addr string, opts Options) (*Server, error) {
	s := &Server{now: opts.Now, logf: opts.Logf, done: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	serverCert, err := s.generateKeys(opts.Hosts)
	if err != nil {
		return nil, err
	}

	s.tls = tlsFaults{serving: serverCert, faulty: map[TLSFault]tls.Certificate{}, conns: map[net.Conn]bool{}}
	s.banks = newBanks(opts.Lifetimes)
	if err := s.registerFAPIClients(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for _, b := range s.banks {
		if b.handlerOf != nil {
			mux.Handle(b.path, b.handlerOf(s, b))
			continue
		}
		mux.Handle(b.path, s.handler(b, tokenEndpoint))
		if b.revocation != nil {
			mux.Handle(b.revocation.path, s.handler(b, revocationCalls))
		}
		if b.protectedAPI != "" {
			mux.Handle(b.protectedAPI, s.protectedAPIHandler(b))
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, nil, map[string]string{"error": "not_found", "error_description": "no token endpoint at this path"})
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.listener = ln
	s.baseURL = "https://" + urlHost(ln.Addr().(*net.TCPAddr), opts.Hosts)
	if err := s.startOpenFinance(mux, ln.Addr(), opts.Hosts, opts); err != nil {
		_ = ln.Close()
		return nil, err
	}
	errorLog := log.New(io.Discard, "", 0) // handshake failures are expected in tests
	if opts.Logf != nil {
		errorLog = log.New(logWriter(opts.Logf), "sandbox: ", 0)
	}
	s.httpServer = &http.Server{
		Handler: mux,
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.certificate,
			// Verified if given; RAKBANK partner's handler demands one.
			ClientAuth: tls.VerifyClientCertIfGiven,
			ClientCAs:  s.ca.Pool(),
		},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errorLog,
		ConnState:         s.trackConnection,
	}
	go func() {
		defer close(s.done)
		_ = s.httpServer.ServeTLS(ln, "", "")
	}()
	return s, nil
}

// generateKeys makes the run's CA, the server certificate it returns, the client
// certificate RAKBANK partner's mutual TLS takes, and Banfico's JWT signing key.
func (s *Server) generateKeys(extraHosts []string) (tls.Certificate, error) {
	realNow := time.Now()
	notBefore, notAfter := realNow.Add(-time.Hour), realNow.Add(365*24*time.Hour)
	var err error
	if s.ca, err = NewCertificateAuthority("sandbox bank CA", realNow); err != nil {
		return tls.Certificate{}, err
	}
	hosts := append([]string{"127.0.0.1", "::1", "localhost"}, extraHosts...)
	serverCert, err := s.ca.IssueTLS(Leaf{CommonName: "sandbox-bank", Hosts: hosts, NotBefore: notBefore, NotAfter: notAfter})
	if err != nil {
		return tls.Certificate{}, err
	}
	s.clientCertPEM, s.clientKeyPEM, err = s.ca.Issue(Leaf{CommonName: "sandbox-bank-client", Client: true, NotBefore: notBefore, NotAfter: notAfter})
	if err != nil {
		return tls.Certificate{}, err
	}
	// Banfico's access tokens are RS256 JWTs, as Keycloak issues them.
	s.jwtKey, err = rsa.GenerateKey(rand.Reader, 2048)
	return serverCert, err
}

func urlHost(addr *net.TCPAddr, hosts []string) string {
	host := addr.IP.String()
	switch {
	case len(hosts) > 0:
		host = hosts[0]
	case addr.IP.IsUnspecified():
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

type logWriter func(format string, args ...any)

func (l logWriter) Write(p []byte) (int, error) { l("%s", p); return len(p), nil }

// Close stops the server at once: it closes every connection, since a graceful HTTP/2
// shutdown would wait a second per client for GOAWAY.
func (s *Server) Close() {
	s.closeOpenFinance()
	_ = s.httpServer.Close()
	<-s.done
}

// URL is the server's base URL, e.g. https://127.0.0.1:PORT.
func (s *Server) URL() string { return s.baseURL }

// TokenURL is bank's full token endpoint URL; "" for a name that is not a bank (OAuth2).
func (s *Server) TokenURL(name providers.Name) string {
	b, ok := s.banks[name]
	if !ok {
		return ""
	}
	return s.baseURL + b.path
}

// Banks lists the banks served.
func Banks() []providers.Name {
	return []providers.Name{providers.RAKBank, providers.RAKBankPartner, providers.Banfico, providers.Mbanq, providers.Paymob}
}

// CABundle is the PEM CA that signed the server (and client) certificates.
func (s *Server) CABundle() []byte { return s.ca.CertPEM() }

// ClientCertificate is a PEM pair signed by the CA and accepted for mutual TLS.
func (s *Server) ClientCertificate() (certPEM, keyPEM []byte) {
	return slices.Clone(s.clientCertPEM), slices.Clone(s.clientKeyPEM)
}

// CertificateAuthority is the server's CA, to issue further client certificates in tests.
func (s *Server) CertificateAuthority() *CertificateAuthority { return s.ca }

// Credentials are what bank currently accepts.
func (s *Server) Credentials(name providers.Name) BankCredentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bank(name).creds.clone()
}

// SetCredentials replaces what bank accepts. Tokens already issued stay valid.
func (s *Server) SetCredentials(name providers.Name, c BankCredentials) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bank(name).creds = c.clone()
}

// RotateClientSecret gives bank a new client secret, invalidating the old one, and
// returns the credentials now accepted.
func (s *Server) RotateClientSecret(name providers.Name) BankCredentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bank(name)
	b.secretGeneration++
	b.creds.ClientSecret = fmt.Sprintf("demo-%s-client-secret-%d", b.slug, b.secretGeneration)
	return b.creds.clone()
}

// SetLifetime changes the lifetime of access tokens bank issues from now on.
func (s *Server) SetLifetime(name providers.Name, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bank(name).lifetime = d
}

// Requests is the number of token calls bank received, accepted or not.
func (s *Server) Requests(name providers.Name) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bank(name).calls)
}

// Calls is bank's log of token calls, oldest first.
func (s *Server) Calls(name providers.Name) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bank(name).calls)
}

// Rejected is the calls bank refused, oldest first.
func (s *Server) Rejected(name providers.Name) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.bank(name).calls {
		if !c.Accepted() {
			out = append(out, c)
		}
	}
	return out
}

// Issued is the number of access tokens bank issued by grant (refresh_token included).
func (s *Server) Issued(name providers.Name, grant providers.GrantType) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bank(name).issued[string(grant)]
}

// AccessTokenValid is the resource server's check: bank issued this token, it has not
// expired (by Options.Now) and has not been revoked: by revocation (RFC 7009), by a refresh
// that revokes the token it replaces (Paymob, MBANQ), or with its grant chain (Keycloak).
func (s *Server) AccessTokenValid(name providers.Name, accessToken string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.bank(name).accessTokens[accessToken]
	return ok && !at.revoked && s.now().Before(at.expiresAt)
}

// RefreshTokenValid says whether bank would still accept this refresh token.
func (s *Server) RefreshTokenValid(name providers.Name, refreshToken string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.bank(name).refreshTokens[refreshToken]
	return ok && rt.usable()
}

// SetUnavailable makes bank answer 503 with an HTML page and no Retry-After while on, at
// its token and revocation endpoints.
func (s *Server) SetUnavailable(name providers.Name, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bank(name).unavailable = on
}

// SetRateLimited makes bank answer 429 with Retry-After (seconds) while retryAfter > 0.
func (s *Server) SetRateLimited(name providers.Name, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bank(name).rateLimitedFor = retryAfter
}

// RevokeRefreshTokens makes every refresh token bank issued so far answer invalid_grant.
func (s *Server) RevokeRefreshTokens(name providers.Name) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.bank(name).refreshTokens {
		rt.revoked = true
	}
}

// SetSecondFactorRequired makes MBANQ answer a password login by username with a
// second-factor (OTP) challenge instead of a token, while on.
func (s *Server) SetSecondFactorRequired(username string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bank(providers.Mbanq)
	if on {
		b.secondFactorUsers[username] = true
	} else {
		delete(b.secondFactorUsers, username)
	}
}

// Request is a ready-made providers.Request for bank with the credentials, scope,
// headers, metadata and TLS material it accepts.
func (s *Server) Request(name providers.Name) providers.Request {
	c := s.Credentials(name)
	req := providers.Request{
		Provider:      ProviderOf(name),
		TokenEndpoint: s.TokenURL(name),
		Scope:         c.Scope,
		Credentials:   c.ProviderCredentials(),
		Headers:       slices.Clone(c.Headers),
		Metadata:      c.Metadata,
		TLS:           providers.TLSMaterial{CABundle: s.CABundle()},
	}
	if name == providers.RAKBankPartner {
		req.TLS.ClientCertificate, req.TLS.ClientKey = s.clientCertPEM, providers.Secret(s.clientKeyPEM)
	}
	s.fapiRequest(name, &req)
	return req
}

func (s *Server) bank(name providers.Name) *bank {
	b, ok := s.banks[name]
	if !ok {
		panic(errors.New("sandbox: no bank named " + string(name)))
	}
	return b
}
