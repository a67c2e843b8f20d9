package sandbox_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

type clockAt time.Time

func (c clockAt) Now() time.Time { return time.Time(c) }

// fapiFetch calls bank with its ready-made request, changed by change, through client.
func fapiFetch(s *sandbox.Server, bank providers.Name, client *providers.Client, change func(*providers.Request)) (*providers.Token, *providers.Error) {
	req := s.Request(bank)
	if change != nil {
		change(&req)
	}
	tok, err := client.Fetch(context.Background(), req)
	if err != nil {
		return nil, err.(*providers.Error)
	}
	return tok, nil
}

func wantRefused(t *testing.T, err *providers.Error, reason string) {
	t.Helper()
	if err == nil || err.Class != providers.ClassPermanent || err.Reason != reason {
		t.Fatalf("got %v, want Permanent/%s", err, reason)
	}
}

func TestSignedJWTRealm(t *testing.T) {
	s := start(t, sandbox.Options{})
	client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()})

	t.Run("a good assertion gets a Keycloak token; each call a new jti", func(t *testing.T) {
		for range 2 {
			if _, err := fapiFetch(s, sandbox.SignedJWTRealm, client, nil); err != nil {
				t.Fatal(err)
			}
		}
		if s.Issued(sandbox.SignedJWTRealm, "client_credentials") != 2 {
			t.Errorf("issued %d", s.Issued(sandbox.SignedJWTRealm, "client_credentials"))
		}
	})
	t.Run("the realm's issuer is an accepted audience", func(t *testing.T) {
		_, err := fapiFetch(s, sandbox.SignedJWTRealm, client, func(r *providers.Request) {
			r.Credentials.AssertionKey.Audience = s.URL() + "/signed-jwt/auth/realms/open-banking"
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a replayed jti is refused", func(t *testing.T) {
		replaying := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard(), NewAssertionID: func() string { return "same-jti" }})
		if _, err := fapiFetch(s, sandbox.SignedJWTRealm, replaying, nil); err != nil {
			t.Fatal(err)
		}
		_, err := fapiFetch(s, sandbox.SignedJWTRealm, replaying, nil)
		wantRefused(t, err, providers.ReasonInvalidClientAssertion)
	})
	t.Run("an expired assertion is refused", func(t *testing.T) {
		late := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard(), Clock: clockAt(time.Now().Add(-2 * time.Minute))})
		_, err := fapiFetch(s, sandbox.SignedJWTRealm, late, nil)
		wantRefused(t, err, providers.ReasonInvalidClientAssertion)
	})
	t.Run("an assertion for another audience is refused", func(t *testing.T) {
		_, err := fapiFetch(s, sandbox.SignedJWTRealm, client, func(r *providers.Request) {
			r.Credentials.AssertionKey.Audience = "https://elsewhere.example/token"
		})
		wantRefused(t, err, providers.ReasonInvalidClientAssertion)
	})
	t.Run("after the bank registers a rotated key, the old key is refused", func(t *testing.T) {
		rotated, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s.SetAssertionPublicKey(&rotated.PublicKey)
		_, perr := fapiFetch(s, sandbox.SignedJWTRealm, client, nil)
		wantRefused(t, perr, providers.ReasonInvalidClientAssertion)
		if last := s.Rejected(sandbox.SignedJWTRealm); last[len(last)-1].ClientAuthentication != providers.ClientAuthPrivateKeyJWT {
			t.Errorf("rejected call recorded as %q", last[len(last)-1].ClientAuthentication)
		}
	})
}

func TestMTLSServer(t *testing.T) {
	s := start(t, sandbox.Options{})
	client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()})

	t.Run("the registered certificate gets a token bound to it", func(t *testing.T) {
		tok, err := fapiFetch(s, sandbox.MTLSServer, client, nil)
		if err != nil {
			t.Fatal(err)
		}
		certPEM, _ := s.ClientCertificate()
		if want := sandbox.CertificateThumbprint(certPEM); tok.CertificateThumbprint != want || want == "" {
			t.Errorf("thumbprint %q, want %q", tok.CertificateThumbprint, want)
		}
		if !s.AccessTokenValid(sandbox.MTLSServer, tok.AccessToken.Reveal()) {
			t.Error("the bank does not know its token")
		}
	})
	t.Run("a certificate from the same CA with another subject is refused", func(t *testing.T) {
		certPEM, keyPEM, err := s.CertificateAuthority().Issue(sandbox.Leaf{CommonName: "someone-else", Client: true,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		_, perr := fapiFetch(s, sandbox.MTLSServer, client, func(r *providers.Request) {
			r.TLS.ClientCertificate, r.TLS.ClientKey = certPEM, providers.Secret(keyPEM)
		})
		wantRefused(t, perr, providers.ReasonClientCertificateRejected)
	})
	t.Run("another client id is refused", func(t *testing.T) {
		_, err := fapiFetch(s, sandbox.MTLSServer, client, func(r *providers.Request) { r.Credentials.ClientID = "someone-else" })
		wantRefused(t, err, providers.ReasonClientCertificateRejected)
	})
}

// loopbackGuard admits the loopback addresses the sandbox banks listen on.
func loopbackGuard() *providers.EndpointGuard {
	g, err := providers.NewEndpointGuard(providers.EndpointRules{AllowLoopback: true})
	if err != nil {
		panic(err) // no host patterns to refuse
	}
	return g
}
