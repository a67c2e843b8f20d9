package sandbox_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// callAPI is a workload's call to bank's protected API with authorization as its header.
func callAPI(t *testing.T, s *sandbox.Server, bank providers.Name, authorization string) (int, http.Header, string) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CABundle())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, s.ProtectedAPIURL(bank), nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, strings.TrimSpace(string(body))
}

func TestProtectedAPIAcceptsExactlyTheTokensTheBankStillHonours(t *testing.T) {
	s := start(t, sandbox.Options{})
	client := providers.NewClient(providers.ClientOptions{Timeout: 10 * time.Second, Guard: loopbackGuard()})
	for _, bank := range sandbox.Banks() {
		t.Run(string(bank), func(t *testing.T) {
			if got := s.ProtectedAPIURL(bank); !strings.HasSuffix(got, "/api/accounts") {
				t.Fatalf("ProtectedAPIURL = %q", got)
			}
			tok, err := client.Fetch(context.Background(), s.Request(bank))
			if err != nil {
				t.Fatal(err)
			}
			if status, _, body := callAPI(t, s, bank, "Bearer "+tok.AccessToken.Reveal()); status != 200 || body != `{"accounts":[]}` {
				t.Errorf("with its token: %d %s, want 200 {\"accounts\":[]}", status, body)
			}
			status, header, body := callAPI(t, s, bank, "Bearer demo-not-a-token")
			if status != 401 || body != `{"error":"invalid_token"}` || !strings.Contains(header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("with a bad token: %d %s %q, want RFC 6750 §3.1 invalid_token", status, body, header.Get("WWW-Authenticate"))
			}
			if status, header, _ := callAPI(t, s, bank, ""); status != 401 || !strings.HasPrefix(header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("without a token: %d %q", status, header.Get("WWW-Authenticate"))
			}
			if got := s.ProtectedAPIRefusals(bank); got != 2 {
				t.Errorf("ProtectedAPIRefusals = %d, want 2", got)
			}
		})
	}
	for _, name := range []providers.Name{sandbox.SignedJWTRealm, providers.OAuth2} {
		if got := s.ProtectedAPIURL(name); got != "" {
			t.Errorf("%s: ProtectedAPIURL = %q, want none", name, got)
		}
	}
}

// TestProtectedAPIRefusesTheTokenARefreshReplaced: as measured on DOT, the previous access
// token's next API call is refused once its refresh token is used.
func TestProtectedAPIRefusesTheTokenARefreshReplaced(t *testing.T) {
	s := start(t, sandbox.Options{})
	c := s.Credentials(providers.Paymob)
	first := grant(t, s, providers.Paymob, paymobLogin(c))
	second := grant(t, s, providers.Paymob, paymobRefresh(c, first.refresh))
	if status, _, _ := callAPI(t, s, providers.Paymob, "Bearer "+first.access); status != 401 {
		t.Errorf("the replaced token: %d, want 401", status)
	}
	if status, _, _ := callAPI(t, s, providers.Paymob, "bearer "+second.access); status != 200 {
		t.Errorf("the new token (lower-case scheme): %d, want 200", status)
	}
	if got := s.ProtectedAPIRefusals(providers.Paymob); got != 1 {
		t.Errorf("ProtectedAPIRefusals = %d, want 1", got)
	}
}
