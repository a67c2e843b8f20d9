package providers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// clock is a settable time shared by a fake bank and the client.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Step(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

type bankEnv struct {
	bank   *sandbox.Server
	client *providers.Client
	clock  *clock
}

func startBank(t *testing.T) *bankEnv {
	t.Helper()
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	srv, err := sandbox.Start(sandbox.Options{
		Now:       clk.Now,
		Lifetimes: map[providers.Name]time.Duration{providers.Banfico: 5 * time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &bankEnv{bank: srv, clock: clk, client: providers.NewClient(providers.ClientOptions{Guard: loopbackGuard(), Clock: clk, Timeout: 10 * time.Second})}
}

// fetch calls the client and returns its *Error, failing the test if an error is not one
// or if any message holds one of the request's secrets.
func (e *bankEnv) fetch(t *testing.T, req providers.Request) (*providers.Token, *providers.Error) {
	t.Helper()
	tok, err := e.client.Fetch(context.Background(), req)
	if err == nil {
		return tok, nil
	}
	return nil, providerError(t, err, req)
}

// providerError fails the test unless err is an *Error whose message holds none of req's secrets.
func providerError(t *testing.T, err error, req providers.Request) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is a %T, want *providers.Error", err, err)
	}
	assertNoSecret(t, pe.Message, req)
	return pe
}

func assertNoSecret(t *testing.T, msg string, req providers.Request) {
	t.Helper()
	for _, s := range []providers.Secret{req.Credentials.ClientSecret, req.Credentials.Password, req.RefreshToken} {
		if !s.IsZero() && strings.Contains(msg, s.Reveal()) {
			t.Errorf("error message leaks a secret: %q", msg)
		}
	}
}

// token fetches and fails the test unless a token comes back.
func (e *bankEnv) token(t *testing.T, req providers.Request) *providers.Token {
	t.Helper()
	tok, err := e.fetch(t, req)
	if err != nil {
		t.Fatalf("want a token, got %s/%s: %s", err.Class, err.Reason, err.Message)
	}
	return tok
}

func wantError(t *testing.T, err *providers.Error, class providers.Class, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %s/%s, got a token", class, reason)
	}
	if err.Class != class || err.Reason != reason {
		t.Fatalf("got %s/%s, want %s/%s: %s", err.Class, err.Reason, class, reason, err.Message)
	}
}

// failure makes the bank's usual request, changed by change, and fails the test unless the
// call fails with class and reason.
func (e *bankEnv) failure(t *testing.T, bank providers.Name, change func(*providers.Request), class providers.Class, reason string) *providers.Error {
	t.Helper()
	req := e.bank.Request(bank)
	change(&req)
	_, err := e.fetch(t, req)
	wantError(t, err, class, reason)
	return err
}

// refusedBeforeAnyCall is failure for a request the client must refuse without calling the bank.
func (e *bankEnv) refusedBeforeAnyCall(t *testing.T, bank providers.Name, change func(*providers.Request), reason string) {
	t.Helper()
	before := e.bank.Requests(bank)
	e.failure(t, bank, change, providers.ClassConfiguration, reason)
	if e.bank.Requests(bank) != before {
		t.Error("the bank was called")
	}
}

func wrongClientSecret(r *providers.Request) { r.Credentials.ClientSecret = "demo-wrong-secret" }

func wrongPassword(r *providers.Request) { r.Credentials.Password = "demo-wrong-password" }

func TestRAKBank(t *testing.T) {
	env := startBank(t)
	bank := providers.RAKBank

	t.Run("client_credentials with Basic", func(t *testing.T) {
		tok := env.token(t, env.bank.Request(bank))
		if tok.TokenType != "Bearer" {
			t.Errorf("TokenType = %q, want bearer normalised to Bearer", tok.TokenType)
		}
		if got := tok.ExpiresAt.Sub(env.clock.Now()); got != time.Hour {
			t.Errorf("lifetime = %v, want 1h", got)
		}
		if tok.RefreshToken.IsZero() {
			t.Error("client_credentials got no refresh token; the document's client_credentials answer carries one")
		}
		if tok.Scope != "accounts payments" {
			t.Errorf("Scope = %q", tok.Scope)
		}
		if !env.bank.AccessTokenValid(bank, tok.AccessToken.Reveal()) {
			t.Error("the bank does not accept the token")
		}
	})
	t.Run("client_credentials with body authentication", func(t *testing.T) {
		req := env.bank.Request(bank)
		req.ClientAuthentication = providers.ClientAuthBody
		env.token(t, req)
		if last := env.bank.Calls(bank); last[len(last)-1].ClientAuthentication != providers.ClientAuthBody {
			t.Errorf("the bank saw %q client authentication", last[len(last)-1].ClientAuthentication)
		}
	})
	t.Run("password grant then refresh, which keeps the refresh token", func(t *testing.T) { rakbankRefreshKeepsRefreshToken(t, env) })
	t.Run("wrong client secret is a permanent credential failure", func(t *testing.T) {
		err := env.failure(t, bank, wrongClientSecret, providers.ClassPermanent, providers.ReasonInvalidCredentials)
		if err.StatusCode != 401 || !strings.Contains(err.Message, "invalid_client") {
			t.Errorf("error = %d %q", err.StatusCode, err.Message)
		}
	})
	t.Run("wrong password is a permanent credential failure", func(t *testing.T) {
		env.failure(t, bank, func(r *providers.Request) { r.GrantType = providers.GrantPassword; wrongPassword(r) },
			providers.ClassPermanent, providers.ReasonInvalidCredentials)
	})
	t.Run("a scope the bank does not grant", func(t *testing.T) {
		env.failure(t, bank, func(r *providers.Request) { r.Scope = "everything" }, providers.ClassPermanent, providers.ReasonInvalidScope)
	})
}

func TestRAKBankPartner(t *testing.T) {
	env := startBank(t)
	bank := providers.RAKBankPartner

	t.Run("client_credentials over mutual TLS with a fresh MsgId each call", func(t *testing.T) {
		req := env.bank.Request(bank)
		first := env.token(t, req)
		env.token(t, req)
		if first.TokenType != "Bearer" || first.Scope != "accounts" || first.ExpiresAt.Sub(env.clock.Now()) != time.Hour {
			t.Errorf("token = %s %q %v", first.TokenType, first.Scope, first.ExpiresAt)
		}
		calls := env.bank.Calls(bank)
		if len(calls) != 2 || !calls[0].Accepted() || !calls[1].Accepted() {
			t.Fatalf("calls = %+v", calls)
		}
		if calls[0].MsgID == calls[1].MsgID {
			t.Error("MsgId was reused across calls")
		}
		if _, err := uuid.Parse(calls[0].MsgID); err != nil {
			t.Errorf("MsgId %q is not a UUID", calls[0].MsgID)
		}
		if calls[0].Metadata["account_id"] != "0188000049916" {
			t.Errorf("oauth_metadata = %v", calls[0].Metadata)
		}
	})
	t.Run("without a client certificate the bank refuses", func(t *testing.T) {
		req := env.bank.Request(bank)
		req.TLS.ClientCertificate, req.TLS.ClientKey = nil, ""
		_, err := env.fetch(t, req)
		wantError(t, err, providers.ClassPermanent, providers.ReasonInvalidCredentials)
		if !strings.Contains(err.Message, "response_code AUTH-001") {
			t.Errorf("message %q does not carry the IBM response_code", err.Message)
		}
	})
	t.Run("a reused MsgId is refused", func(t *testing.T) {
		fixed := uuid.NewString()
		client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard(), NewMessageID: func() string { return fixed }})
		req := env.bank.Request(bank)
		if _, err := client.Fetch(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		_, err := client.Fetch(context.Background(), req)
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Class != providers.ClassPermanent || !strings.Contains(pe.Message, "MSG-003") {
			t.Fatalf("second call with the same MsgId: %v", err)
		}
	})
	t.Run("a scope that needs metadata without it", func(t *testing.T) {
		env.failure(t, bank, func(r *providers.Request) { r.Metadata = nil }, providers.ClassPermanent, providers.ReasonInvalidRequest)
	})
	t.Run("wrong client secret", func(t *testing.T) {
		env.failure(t, bank, wrongClientSecret, providers.ClassPermanent, providers.ReasonInvalidCredentials)
	})
	t.Run("a refresh is refused before any call", func(t *testing.T) {
		env.refusedBeforeAnyCall(t, bank, func(r *providers.Request) { r.RefreshToken = "demo-refresh" }, providers.ReasonUnsupportedGrantType)
	})
}

func TestBanfico(t *testing.T) {
	env := startBank(t)
	bank := providers.Banfico

	t.Run("client_credentials returns an RS256 JWT whose exp agrees with expires_in", func(t *testing.T) {
		tok := env.token(t, env.bank.Request(bank))
		if got := tok.ExpiresAt.Sub(env.clock.Now()); got != 5*time.Minute {
			t.Errorf("lifetime = %v, want Keycloak's 5m", got)
		}
		claims := jwt.MapClaims{}
		_, err := jwt.NewParser(jwt.WithTimeFunc(env.clock.Now), jwt.WithValidMethods([]string{"RS256"})).
			ParseWithClaims(tok.AccessToken.Reveal(), claims, func(*jwt.Token) (any, error) { return env.bank.BanficoPublicKey(), nil })
		if err != nil {
			t.Fatalf("the access token is not a valid RS256 JWT: %v", err)
		}
		exp, _ := claims.GetExpirationTime()
		if !exp.Time.Equal(tok.ExpiresAt) {
			t.Errorf("JWT exp %v != ExpiresAt %v", exp.Time, tok.ExpiresAt)
		}
		if !tok.RefreshToken.IsZero() {
			t.Error("Keycloak issued a refresh token without offline_access")
		}
	})
	t.Run("offline_access gives an offline refresh token that refreshes", func(t *testing.T) {
		req := env.bank.Request(bank)
		req.Scope = "profile offline_access"
		tok := env.token(t, req)
		if tok.RefreshToken.IsZero() || !tok.RefreshExpiresAt.IsZero() {
			t.Fatalf("want an offline refresh token with no expiry, got refresh=%v expiry=%v", !tok.RefreshToken.IsZero(), tok.RefreshExpiresAt)
		}
		req.RefreshToken = tok.RefreshToken
		refreshed := env.token(t, req)
		if !env.bank.AccessTokenValid(bank, refreshed.AccessToken.Reveal()) {
			t.Error("the refreshed token is not accepted")
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		env.failure(t, bank, wrongClientSecret, providers.ClassPermanent, providers.ReasonInvalidCredentials)
	})
	t.Run("password grant is refused before any call", func(t *testing.T) {
		env.refusedBeforeAnyCall(t, bank, func(r *providers.Request) {
			r.GrantType = providers.GrantPassword
			r.Credentials.Username, r.Credentials.Password = "demo-user", "demo-password-x"
		}, providers.ReasonUnsupportedGrantType)
	})
	t.Run("429 with Retry-After", func(t *testing.T) {
		env.bank.SetRateLimited(bank, 30*time.Second)
		defer env.bank.SetRateLimited(bank, 0)
		_, err := env.fetch(t, env.bank.Request(bank))
		wantError(t, err, providers.ClassRateLimited, providers.ReasonRateLimited)
		if err.RetryAfter != 30*time.Second {
			t.Errorf("RetryAfter = %v, want 30s", err.RetryAfter)
		}
	})
}

func TestMbanq(t *testing.T) {
	env := startBank(t)
	bank := providers.Mbanq

	t.Run("password grant then refresh", func(t *testing.T) {
		req := env.bank.Request(bank)
		tok := env.token(t, req)
		if tok.RefreshToken.IsZero() {
			t.Fatal("no refresh token")
		}
		env.clock.Step(time.Hour + time.Second)
		if env.bank.AccessTokenValid(bank, tok.AccessToken.Reveal()) {
			t.Error("the token outlived its expires_in")
		}
		req.RefreshToken = tok.RefreshToken
		refreshed := env.token(t, req)
		if !env.bank.AccessTokenValid(bank, refreshed.AccessToken.Reveal()) {
			t.Error("the refreshed token is not accepted")
		}
		if !refreshed.IssuedAt.Equal(env.clock.Now()) {
			t.Errorf("IssuedAt = %v, want the clock's %v", refreshed.IssuedAt, env.clock.Now())
		}
	})
	t.Run("a missing device header is the bank's refusal", func(t *testing.T) {
		tenantIDOnly := func(r *providers.Request) { r.Headers = r.Headers[:1] }
		err := env.failure(t, bank, tenantIDOnly, providers.ClassPermanent, providers.ReasonInvalidRequest)
		if !strings.Contains(err.Message, "X-Device-IP") {
			t.Errorf("message %q does not name the header", err.Message)
		}
	})
	t.Run("a missing tenantId is refused before any call", func(t *testing.T) {
		env.refusedBeforeAnyCall(t, bank, func(r *providers.Request) { r.Headers = r.Headers[1:] }, providers.ReasonInvalidProviderRequest)
	})
	t.Run("a second factor demanded is permanent", func(t *testing.T) {
		req := env.bank.Request(bank)
		env.bank.SetSecondFactorRequired(req.Credentials.Username, true)
		defer env.bank.SetSecondFactorRequired(req.Credentials.Username, false)
		_, err := env.fetch(t, req)
		wantError(t, err, providers.ClassPermanent, providers.ReasonSecondFactorRequired)
	})
	t.Run("wrong password", func(t *testing.T) {
		env.failure(t, bank, wrongPassword, providers.ClassPermanent, providers.ReasonInvalidCredentials)
	})
}

func TestPaymob(t *testing.T) {
	env := startBank(t)
	bank := providers.Paymob

	for _, auth := range []providers.ClientAuthentication{providers.ClientAuthBasic, providers.ClientAuthBody} {
		t.Run("password grant with "+string(auth)+" client authentication", func(t *testing.T) {
			req := env.bank.Request(bank)
			req.ClientAuthentication = auth
			tok := env.token(t, req)
			if tok.RefreshToken.IsZero() || tok.Scope != "read write" || tok.TokenType != "Bearer" {
				t.Errorf("token = refresh:%v scope:%q type:%q", !tok.RefreshToken.IsZero(), tok.Scope, tok.TokenType)
			}
		})
	}
	t.Run("refresh rotates, and the spent refresh token is dead", func(t *testing.T) { paymobRefreshRotates(t, env) })
	t.Run("revoked refresh tokens fall back", func(t *testing.T) {
		req := env.bank.Request(bank)
		tok := env.token(t, req)
		env.bank.RevokeRefreshTokens(bank)
		req.RefreshToken = tok.RefreshToken
		_, err := env.fetch(t, req)
		wantError(t, err, providers.ClassRefreshTokenRejected, providers.ReasonRefreshTokenRejected)
	})
	t.Run("wrong password is Paymob's invalid_grant, permanent", func(t *testing.T) {
		err := env.failure(t, bank, wrongPassword, providers.ClassPermanent, providers.ReasonInvalidCredentials)
		if !strings.Contains(err.Message, "Invalid credentials given.") {
			t.Errorf("message %q lacks the bank's description", err.Message)
		}
	})
	t.Run("a rotated client secret", func(t *testing.T) {
		old := env.bank.Request(bank)
		env.bank.RotateClientSecret(bank)
		_, err := env.fetch(t, old)
		wantError(t, err, providers.ClassPermanent, providers.ReasonInvalidCredentials)
		env.token(t, env.bank.Request(bank))
	})
	t.Run("unavailable answers 503 HTML, transient", func(t *testing.T) {
		env.bank.SetUnavailable(bank, true)
		defer env.bank.SetUnavailable(bank, false)
		_, err := env.fetch(t, env.bank.Request(bank))
		wantError(t, err, providers.ClassTransient, providers.ReasonServerError)
		if !strings.Contains(err.Message, "HTML") || err.RetryAfter != 0 {
			t.Errorf("error = %q retryAfter=%v", err.Message, err.RetryAfter)
		}
	})
}

func TestClientIsSafeForConcurrentUse(t *testing.T) {
	env := startBank(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := env.client.Fetch(context.Background(), env.bank.Request(providers.Banfico)); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// rakbankRefreshKeepsRefreshToken checks that RAKBANK answers a refresh with the same refresh token.
func rakbankRefreshKeepsRefreshToken(t *testing.T, env *bankEnv) {
	const bank = providers.RAKBank
	req := env.bank.Request(bank)
	req.GrantType = providers.GrantPassword
	tok := env.token(t, req)
	if tok.RefreshToken.IsZero() {
		t.Fatal("password grant gave no refresh token")
	}
	req.RefreshToken = tok.RefreshToken
	refreshed := env.token(t, req)
	if refreshed.AccessToken == tok.AccessToken {
		t.Error("refresh returned the same access token")
	}
	if refreshed.RefreshToken != tok.RefreshToken {
		t.Error("RAKBANK rotated the refresh token; it should keep it")
	}
	if env.bank.Issued(bank, providers.GrantRefreshToken) != 1 {
		t.Errorf("bank issued %d tokens by refresh, want 1", env.bank.Issued(bank, providers.GrantRefreshToken))
	}
}

// paymobRefreshRotates checks that Django OAuth Toolkit rotates refresh tokens and kills the spent one.
func paymobRefreshRotates(t *testing.T, env *bankEnv) {
	const bank = providers.Paymob
	req := env.bank.Request(bank)
	first := env.token(t, req)

	refreshReq := req
	refreshReq.RefreshToken = first.RefreshToken
	second := env.token(t, refreshReq)
	if second.RefreshToken.IsZero() || second.RefreshToken == first.RefreshToken {
		t.Fatal("the refresh token was not rotated")
	}
	if printed := fmt.Sprintf("%v %+v %#v", second, *second, *second); strings.Contains(printed, second.AccessToken.Reveal()) || strings.Contains(printed, second.RefreshToken.Reveal()) {
		t.Errorf("printing a token shows its secrets: %s", printed)
	}
	if env.bank.AccessTokenValid(bank, first.AccessToken.Reveal()) {
		t.Error("the old access token still works after the refresh")
	}

	_, err := env.fetch(t, refreshReq) // the spent one again
	wantError(t, err, providers.ClassRefreshTokenRejected, providers.ReasonRefreshTokenRejected)

	refreshReq.RefreshToken = second.RefreshToken
	env.token(t, refreshReq)
}
