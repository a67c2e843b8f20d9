package sandbox_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// callAPIWithCertificate is a workload's call to bank's protected API over mutual TLS with
// the PEM pair certPEM/keyPEM (none when nil).
func callAPIWithCertificate(t *testing.T, s *sandbox.Server, bank providers.Name, accessToken string, certPEM, keyPEM []byte) int {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CABundle())
	config := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certPEM != nil {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: config}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, s.ProtectedAPIURL(bank), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// RFC 8705 §3: the protected resource takes a certificate-bound token only over mutual TLS
// with the certificate it is bound to; a renewed certificate of the same subject gets a
// token of its own, and each token works with its own certificate only.
func TestMTLSServersProtectedAPITakesABoundTokenOnlyWithItsCertificate(t *testing.T) {
	s := start(t, sandbox.Options{})
	client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()})
	certPEM, keyPEM := s.ClientCertificate()
	tok, err := fapiFetch(s, sandbox.MTLSServer, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.BoundCertificateThumbprint(sandbox.MTLSServer, tok.AccessToken.Reveal()); got != sandbox.CertificateThumbprint(certPEM) {
		t.Fatalf("bound to %q, want the presented certificate's %q", got, sandbox.CertificateThumbprint(certPEM))
	}
	renewedPEM, renewedKey, ierr := s.CertificateAuthority().Issue(sandbox.Leaf{CommonName: "sandbox-bank-client", Client: true,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)})
	if ierr != nil {
		t.Fatal(ierr)
	}
	renewed, err := fapiFetch(s, sandbox.MTLSServer, client, func(r *providers.Request) {
		r.TLS.ClientCertificate, r.TLS.ClientKey = renewedPEM, providers.Secret(renewedKey)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		token     string
		cert, key []byte
		status    int
	}{
		{"the token with its certificate", tok.AccessToken.Reveal(), certPEM, keyPEM, http.StatusOK},
		{"the renewed certificate's token with it", renewed.AccessToken.Reveal(), renewedPEM, renewedKey, http.StatusOK},
		{"the token with the renewed certificate", tok.AccessToken.Reveal(), renewedPEM, renewedKey, http.StatusUnauthorized},
		{"the renewed certificate's token with the first", renewed.AccessToken.Reveal(), certPEM, keyPEM, http.StatusUnauthorized},
		{"the token without a certificate", tok.AccessToken.Reveal(), nil, nil, http.StatusUnauthorized},
	} {
		if got := callAPIWithCertificate(t, s, sandbox.MTLSServer, c.token, c.cert, c.key); got != c.status {
			t.Errorf("%s: %d, want %d", c.name, got, c.status)
		}
	}
}

// A realm holding the key in use and the next one, by kid, takes an assertion signed by
// either and names it; a kid it does not hold is refused.
func TestSignedJWTRealmTakesEitherRegisteredKeyByKid(t *testing.T) {
	s := start(t, sandbox.Options{})
	client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()})
	next, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(next)
	nextPEM := pemBlock("PRIVATE KEY", der)
	sum, _ := (&jose.JSONWebKey{Key: &next.PublicKey}).Thumbprint(cryptoSHA256)
	kid := base64URL(sum)
	withNext := func(r *providers.Request) {
		r.Credentials.AssertionKey.PrivateKey, r.Credentials.AssertionKey.KeyID = providers.Secret(nextPEM), kid
	}
	_, perr := fapiFetch(s, sandbox.SignedJWTRealm, client, withNext)
	wantRefused(t, perr, providers.ReasonInvalidClientAssertion)

	s.RegisterAssertionKey(kid, &next.PublicKey)
	if _, perr := fapiFetch(s, sandbox.SignedJWTRealm, client, withNext); perr != nil {
		t.Fatalf("the next key, registered: %v", perr)
	}
	if _, perr := fapiFetch(s, sandbox.SignedJWTRealm, client, nil); perr != nil {
		t.Fatalf("the current key, beside it: %v", perr)
	}
	_, currentKid := s.ClientAssertionKey()
	accepted := s.AcceptedAssertions()
	if len(accepted) != 2 || accepted[0].KeyID != kid || accepted[1].KeyID != currentKid {
		t.Errorf("accepted %+v, want the next key's kid then the current one's", accepted)
	}
}

const cryptoSHA256 = crypto.SHA256

func pemBlock(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
