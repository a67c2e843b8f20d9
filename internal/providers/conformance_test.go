package providers_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/storage"
	"golang.org/x/crypto/bcrypt"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// oauthServer is github.com/ory/fosite, an independently written RFC 6749 server, with
// the client_credentials, password and refresh_token (rotating) grants and memory storage.
type oauthServer struct {
	url   string
	ca    []byte
	calls atomic.Int32
}

type conformanceClient struct {
	id, secret string
}

const (
	conformanceUser     = "conformance-user"
	conformancePassword = "conformance-password-&%+ ü"
)

func startOAuthServer(t *testing.T, clients ...conformanceClient) *oauthServer {
	t.Helper()
	config, store := newOAuthConfig(), storage.NewMemoryStore()
	for _, c := range clients {
		hash, err := bcrypt.GenerateFromPassword([]byte(c.secret), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		store.Clients[c.id] = &fosite.DefaultClient{
			ID:         c.id,
			Secret:     hash,
			GrantTypes: []string{"client_credentials", "password", "refresh_token"},
			Scopes:     []string{"read", "write"},
		}
	}
	return serveOAuth(t, config, store)
}

func newOAuthConfig() *fosite.Config {
	return &fosite.Config{
		AccessTokenLifespan: 15 * time.Minute,
		GlobalSecret:        []byte("conformance-global-secret-32-byt"),
		// Every grant gets a refresh token, not only "offline" scopes.
		RefreshTokenScopes: []string{},
		HashCost:           bcrypt.MinCost,
	}
}

// serveOAuth serves fosite with config and store over TLS; config.TokenURL becomes the
// server's token URL, the audience fosite demands of client assertions.
func serveOAuth(t *testing.T, config *fosite.Config, store *storage.MemoryStore) *oauthServer {
	t.Helper()
	store.Users[conformanceUser] = storage.MemoryUserRelation{Username: conformanceUser, Password: conformancePassword}
	provider := compose.Compose(config, store, compose.NewOAuth2HMACStrategy(config),
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2ResourceOwnerPasswordCredentialsFactory,
		compose.OAuth2RefreshTokenGrantFactory,
	)

	s := &oauthServer{}
	p := newPKI(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		ctx := r.Context()
		ar, err := provider.NewAccessRequest(ctx, r, &fosite.DefaultSession{Subject: conformanceUser})
		if err != nil {
			provider.WriteAccessError(ctx, w, ar, err)
			return
		}
		for _, scope := range ar.GetRequestedScopes() {
			ar.GrantScope(scope)
		}
		resp, err := provider.NewAccessResponse(ctx, ar)
		if err != nil {
			provider.WriteAccessError(ctx, w, ar, err)
			return
		}
		provider.WriteAccessResponse(ctx, w, ar, resp)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.valid}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.url, s.ca = srv.URL+"/oauth2/token", p.ca.CertPEM()
	config.TokenURL = s.url
	return s
}

func (s *oauthServer) request(c conformanceClient, grant providers.GrantType, auth providers.ClientAuthentication) providers.Request {
	return providers.Request{
		Provider:             providers.OAuth2,
		TokenEndpoint:        s.url,
		GrantType:            grant,
		ClientAuthentication: auth,
		Scope:                "read write",
		Credentials: providers.Credentials{
			ClientID: c.id, ClientSecret: providers.Secret(c.secret),
			Username: conformanceUser, Password: conformancePassword,
		},
		TLS: providers.TLSMaterial{CABundle: s.ca},
	}
}

// conformanceEnv calls the fosite server and checks what every call must satisfy.
type conformanceEnv struct {
	server *oauthServer
	client *providers.Client
}

// fetch makes the call, fails the test unless it was exactly one HTTP call, and returns its
// *Error after checking that the message holds none of the request's secrets.
func (e *conformanceEnv) fetch(t *testing.T, req providers.Request) (*providers.Token, *providers.Error) {
	t.Helper()
	before := e.server.calls.Load()
	tok, err := e.client.Fetch(context.Background(), req)
	if n := e.server.calls.Load() - before; n != 1 {
		t.Errorf("Fetch made %d calls, want exactly 1", n)
	}
	if err == nil {
		return tok, nil
	}
	return nil, providerError(t, err, req)
}

// mustFetch fetches a token and checks the one fosite issues.
func (e *conformanceEnv) mustFetch(t *testing.T, req providers.Request) *providers.Token {
	t.Helper()
	tok, err := e.fetch(t, req)
	if err != nil {
		t.Fatalf("%s/%s: %s", err.Class, err.Reason, err.Message)
	}
	if tok.TokenType != "Bearer" || tok.Scope != "read write" || tok.ExpiresAt.Sub(tok.IssuedAt) < 14*time.Minute {
		t.Errorf("token: type %q scope %q lifetime %v", tok.TokenType, tok.Scope, tok.ExpiresAt.Sub(tok.IssuedAt))
	}
	return tok
}

func TestConformanceWithFosite(t *testing.T) {
	plain := conformanceClient{id: "conformance-client", secret: "conformance-secret-1"}
	// RFC 6749 §2.3.1: these only survive Basic if form-encoded before base64.
	awkward := conformanceClient{id: "client:with&odd%chars+ and ünïcödé", secret: "s3cr:et&%+ with spaces ü€"}
	server := startOAuthServer(t, plain, awkward)
	env := &conformanceEnv{server: server, client: providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()})}
	fetch, mustFetch := env.fetch, env.mustFetch

	for _, c := range []conformanceClient{plain, awkward} {
		for _, auth := range []providers.ClientAuthentication{providers.ClientAuthBasic, providers.ClientAuthBody} {
			t.Run("client_credentials/"+string(auth)+"/"+c.id, func(t *testing.T) {
				mustFetch(t, server.request(c, providers.GrantClientCredentials, auth))
			})
			t.Run("password/"+string(auth)+"/"+c.id, func(t *testing.T) {
				if tok := mustFetch(t, server.request(c, providers.GrantPassword, auth)); tok.RefreshToken.IsZero() {
					t.Error("no refresh token")
				}
			})
		}
	}

	t.Run("refresh rotates, and reusing a rotated token is a dead refresh token", func(t *testing.T) {
		fositeRefreshRotates(t, env, server.request(awkward, providers.GrantPassword, providers.ClientAuthBasic))
	})
	t.Run("a wrong client secret is a permanent credential failure", func(t *testing.T) {
		req := server.request(conformanceClient{id: plain.id, secret: "conformance-wrong-secret"}, providers.GrantClientCredentials, providers.ClientAuthBasic)
		_, err := fetch(t, req)
		wantError(t, err, providers.ClassPermanent, providers.ReasonInvalidCredentials)
	})
	t.Run("a wrong password is a permanent credential failure, not a dead refresh token", func(t *testing.T) {
		req := server.request(plain, providers.GrantPassword, providers.ClientAuthBody)
		req.Credentials.Password = "conformance-wrong-password"
		_, err := fetch(t, req)
		wantError(t, err, providers.ClassPermanent, providers.ReasonInvalidCredentials)
		if strings.Contains(err.Message, "conformance-wrong-password") {
			t.Errorf("message %q leaks the password", err.Message)
		}
	})
	t.Run("a scope the client may not have", func(t *testing.T) {
		req := server.request(plain, providers.GrantClientCredentials, providers.ClientAuthBasic)
		req.Scope = "admin"
		_, err := fetch(t, req)
		wantError(t, err, providers.ClassPermanent, providers.ReasonInvalidScope)
	})
}

// fositeRefreshRotates checks that fosite rotates refresh tokens and revokes the family on reuse.
func fositeRefreshRotates(t *testing.T, env *conformanceEnv, req providers.Request) {
	first := env.mustFetch(t, req)
	req.RefreshToken = first.RefreshToken
	second := env.mustFetch(t, req)
	if second.RefreshToken.IsZero() || second.RefreshToken == first.RefreshToken {
		t.Fatal("fosite did not rotate the refresh token")
	}
	// req still holds the first, spent, refresh token.
	_, err := env.fetch(t, req)
	if err == nil || err.Class != providers.ClassRefreshTokenRejected {
		t.Fatalf("reuse of a rotated refresh token: %v", err)
	}
	// fosite revokes the whole family on reuse: the rotated one is dead too.
	req.RefreshToken = second.RefreshToken
	if _, err := env.fetch(t, req); err == nil || err.Class != providers.ClassRefreshTokenRejected {
		t.Fatalf("refresh after reuse detection: %v", err)
	}
	// The primary grant still works: the fallback the class asks for.
	req.RefreshToken = ""
	env.mustFetch(t, req)
}
