package sandbox_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// openFinanceRequest is a private_key_jwt request to OpenFinance's endpoint (the mTLS
// alias, with the client certificate, when mtls), its assertion addressed to the issuer.
func openFinanceRequest(s *sandbox.Server, mtls bool) providers.Request {
	keyPEM, keyID := s.OpenFinanceAssertionKey()
	req := providers.Request{
		Provider: providers.OAuth2, TokenEndpoint: s.OpenFinanceTokenURL(mtls), Scope: "accounts",
		ClientAuthentication: providers.ClientAuthPrivateKeyJWT,
		Credentials: providers.Credentials{ClientID: s.Credentials(sandbox.OpenFinance).ClientID,
			AssertionKey: providers.AssertionKey{PrivateKey: providers.Secret(keyPEM), KeyID: keyID, Algorithm: "PS256", Audience: s.OpenFinanceIssuer()}},
		TLS: providers.TLSMaterial{CABundle: s.CABundle()},
	}
	if mtls {
		certPEM, certKeyPEM := s.ClientCertificate()
		req.TLS.ClientCertificate, req.TLS.ClientKey = certPEM, providers.Secret(certKeyPEM)
	}
	return req
}

func fetchOpenFinance(client *providers.Client, req providers.Request) (*providers.Token, *providers.Error) {
	tok, err := client.Fetch(context.Background(), req)
	if err != nil {
		return nil, err.(*providers.Error)
	}
	return tok, nil
}

func lastCall(t *testing.T, s *sandbox.Server) sandbox.Call {
	t.Helper()
	calls := s.Calls(sandbox.OpenFinance)
	if len(calls) == 0 {
		t.Fatal("no call recorded")
	}
	return calls[len(calls)-1]
}

func TestOpenFinanceServesRFC8414MetadataBeforeTheIssuersPath(t *testing.T) {
	s := start(t, sandbox.Options{})
	pool := http.Client{Transport: &http.Transport{TLSClientConfig: tlsTrusting(s)}}
	resp, err := pool.Get(s.URL() + "/.well-known/oauth-authorization-server/open-finance")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	aliases, _ := doc["mtls_endpoint_aliases"].(map[string]any)
	if doc["issuer"] != s.OpenFinanceIssuer() || doc["token_endpoint"] != s.OpenFinanceTokenURL(false) ||
		aliases["token_endpoint"] != s.OpenFinanceTokenURL(true) || doc["tls_client_certificate_bound_access_tokens"] != true {
		t.Fatalf("metadata %s", body)
	}
	if s.OpenFinanceTokenURL(true) == s.OpenFinanceTokenURL(false) || strings.HasPrefix(s.OpenFinanceTokenURL(true), s.URL()) {
		t.Fatalf("the mTLS alias %s must be on another port than %s", s.OpenFinanceTokenURL(true), s.URL())
	}
}

func TestOpenFinanceTokenEndpoints(t *testing.T) {
	s := start(t, sandbox.Options{})
	client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()})
	certPEM, _ := s.ClientCertificate()

	t.Run("a PS256 assertion at the mTLS alias gets a 10-minute token bound to the certificate", func(t *testing.T) {
		tok, err := fetchOpenFinance(client, openFinanceRequest(s, true))
		if err != nil {
			t.Fatal(err)
		}
		if tok.CertificateThumbprint != sandbox.CertificateThumbprint(certPEM) {
			t.Errorf("cnf x5t#S256 %q", tok.CertificateThumbprint)
		}
		if life := tok.ExpiresAt.Sub(tok.IssuedAt); life != sandbox.OpenFinanceLifetime {
			t.Errorf("lifetime %s", life)
		}
		if c := lastCall(t, s); c.Listener != sandbox.ListenerMTLS || c.AssertionAudience != s.OpenFinanceIssuer() {
			t.Errorf("recorded %+v", c)
		}
	})
	t.Run("tls_client_auth at the mTLS alias is accepted", func(t *testing.T) {
		req := openFinanceRequest(s, true)
		req.ClientAuthentication, req.Credentials.AssertionKey = providers.ClientAuthTLS, providers.AssertionKey{}
		if _, err := fetchOpenFinance(client, req); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("tls_client_auth at the main endpoint, where no certificate is asked for, is invalid_client", func(t *testing.T) {
		req := openFinanceRequest(s, false)
		req.ClientAuthentication, req.Credentials.AssertionKey = providers.ClientAuthTLS, providers.AssertionKey{}
		certPEM, keyPEM := s.ClientCertificate()
		req.TLS.ClientCertificate, req.TLS.ClientKey = certPEM, providers.Secret(keyPEM)
		_, err := fetchOpenFinance(client, req)
		if err == nil || lastCall(t, s).Error != "invalid_client" || lastCall(t, s).Listener != sandbox.ListenerMain {
			t.Fatalf("got %v, %+v", err, lastCall(t, s))
		}
	})
	t.Run("an assertion addressed to the token endpoint, not the issuer, is refused", func(t *testing.T) {
		req := openFinanceRequest(s, true)
		req.Credentials.AssertionKey.Audience = ""
		if _, err := fetchOpenFinance(client, req); err == nil || lastCall(t, s).Error != "invalid_client" {
			t.Fatalf("got %v, %+v", err, lastCall(t, s))
		}
	})
	t.Run("RS256 is refused", func(t *testing.T) {
		req := openFinanceRequest(s, true)
		req.Credentials.AssertionKey.Algorithm = "RS256"
		if _, err := fetchOpenFinance(client, req); err == nil || lastCall(t, s).Error != "invalid_client" {
			t.Fatalf("got %v, %+v", err, lastCall(t, s))
		}
	})
	t.Run("a replayed jti is refused", func(t *testing.T) {
		replaying := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard(), NewAssertionID: func() string { return "demo-same-jti" }})
		if _, err := fetchOpenFinance(replaying, openFinanceRequest(s, true)); err != nil {
			t.Fatal(err)
		}
		if _, err := fetchOpenFinance(replaying, openFinanceRequest(s, true)); err == nil || !strings.Contains(lastCall(t, s).Reason, "jti") {
			t.Fatalf("got %v, %+v", err, lastCall(t, s))
		}
	})
	t.Run("a moved token endpoint: the old URL answers 404 and the alias is on another host", func(t *testing.T) {
		old := openFinanceRequest(s, true)
		s.MoveOpenFinanceTokenEndpoint()
		if _, err := fetchOpenFinance(client, old); err == nil || err.StatusCode != http.StatusNotFound {
			t.Fatalf("old endpoint: %v", err)
		}
		if !strings.Contains(s.OpenFinanceTokenURL(true), "localhost") {
			t.Fatalf("moved alias %s", s.OpenFinanceTokenURL(true))
		}
		if _, err := fetchOpenFinance(client, openFinanceRequest(s, true)); err != nil {
			t.Fatal(err)
		}
	})
}

func tlsTrusting(s *sandbox.Server) *tls.Config {
	return &tls.Config{RootCAs: s.CertificateAuthority().Pool(), MinVersion: tls.VersionTLS12}
}
