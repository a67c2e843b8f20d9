package providers_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/storage"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// assertionClient is a fosite client that authenticates by private_key_jwt with one key.
type assertionClient struct {
	id, keyID, algorithm string
	key                  crypto.Signer
}

func newAssertionClient(t *testing.T, id, algorithm string) assertionClient {
	t.Helper()
	var key crypto.Signer
	var err error
	if algorithm == providers.AlgorithmES256 {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	return assertionClient{id: id, keyID: id + "-key-1", algorithm: algorithm, key: key}
}

// privateKeyPEM is the key as openssl genpkey writes it: PKCS #8.
func privateKeyPEM(t *testing.T, key crypto.Signer) providers.Secret {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return providers.Secret(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// startAssertionServer is fosite with private_key_jwt clients, each registered with the
// JSON Web Key Set of its public key: fosite checks the signature, iss, sub, aud (its
// token URL), exp and that no jti is used twice.
func startAssertionServer(t *testing.T, clients ...assertionClient) *oauthServer {
	t.Helper()
	store := storage.NewMemoryStore()
	for _, c := range clients {
		store.Clients[c.id] = &fosite.DefaultOpenIDConnectClient{
			DefaultClient: &fosite.DefaultClient{
				ID:         c.id,
				GrantTypes: []string{"client_credentials", "password", "refresh_token"},
				Scopes:     []string{"read", "write"},
			},
			TokenEndpointAuthMethod:           "private_key_jwt",
			TokenEndpointAuthSigningAlgorithm: c.algorithm,
			JSONWebKeys: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
				{Key: c.key.Public(), KeyID: c.keyID, Algorithm: c.algorithm, Use: "sig"},
			}},
		}
	}
	return serveOAuth(t, newOAuthConfig(), store)
}

func (s *oauthServer) assertionRequest(t *testing.T, c assertionClient, grant providers.GrantType) providers.Request {
	req := s.request(conformanceClient{id: c.id}, grant, providers.ClientAuthPrivateKeyJWT)
	req.Credentials.AssertionKey = providers.AssertionKey{PrivateKey: privateKeyPEM(t, c.key), KeyID: c.keyID, Algorithm: c.algorithm}
	return req
}

// clockAt is a providers.Clock stopped at one time.
type clockAt time.Time

func (c clockAt) Now() time.Time { return time.Time(c) }

func TestPrivateKeyJWTConformanceWithFosite(t *testing.T) {
	clients := []assertionClient{
		newAssertionClient(t, "assertion-rs256", providers.AlgorithmRS256),
		newAssertionClient(t, "assertion-ps256", providers.AlgorithmPS256),
		newAssertionClient(t, "assertion-es256", providers.AlgorithmES256),
	}
	server := startAssertionServer(t, clients...)
	env := &conformanceEnv{server: server, client: providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()})}

	for _, c := range clients {
		t.Run("client_credentials/"+c.algorithm, func(t *testing.T) {
			env.mustFetch(t, server.assertionRequest(t, c, providers.GrantClientCredentials))
		})
	}
	rs256 := clients[0]
	t.Run("password grant, then a refresh, each with a fresh assertion", func(t *testing.T) {
		req := server.assertionRequest(t, rs256, providers.GrantPassword)
		first := env.mustFetch(t, req)
		req.RefreshToken = first.RefreshToken
		env.mustFetch(t, req)
	})
	t.Run("an assertion signed by another key is refused as an invalid client assertion", func(t *testing.T) {
		forger := newAssertionClient(t, rs256.id, providers.AlgorithmRS256)
		forger.keyID = rs256.keyID
		_, err := env.fetch(t, server.assertionRequest(t, forger, providers.GrantClientCredentials))
		wantError(t, err, providers.ClassPermanent, providers.ReasonInvalidClientAssertion)
		if !strings.Contains(err.Message, rs256.keyID) {
			t.Errorf("message %q does not name the key id", err.Message)
		}
	})
	t.Run("an expired assertion is refused", func(t *testing.T) {
		late := &conformanceEnv{server: server, client: providers.NewClient(providers.ClientOptions{
			Guard: loopbackGuard(),
			Clock: clockAt(time.Now().Add(-5 * time.Minute)),
		})}
		_, err := late.fetch(t, server.assertionRequest(t, rs256, providers.GrantClientCredentials))
		// fosite v0.49 answers an expired assertion with 500 "The error is unrecognizable"
		// (its expiry error is not an RFC 6749 error), which is a server error like any
		// 5xx. A server that answers invalid_client, as Keycloak does, gets
		// InvalidClientAssertion: see the sandbox's signed-JWT realm.
		wantError(t, err, providers.ClassTransient, providers.ReasonServerError)
	})
	t.Run("a replayed jti is refused", func(t *testing.T) {
		replaying := &conformanceEnv{server: server, client: providers.NewClient(providers.ClientOptions{
			Guard:          loopbackGuard(),
			NewAssertionID: func() string { return "the-same-jti-every-time" },
		})}
		req := server.assertionRequest(t, rs256, providers.GrantClientCredentials)
		replaying.mustFetch(t, req)
		_, err := replaying.fetch(t, req)
		wantError(t, err, providers.ClassPermanent, providers.ReasonInvalidClientAssertion)
	})
	t.Run("an assertion for another audience is refused", func(t *testing.T) {
		req := server.assertionRequest(t, rs256, providers.GrantClientCredentials)
		req.Credentials.AssertionKey.Audience = "https://issuer.example/realms/other"
		_, err := env.fetch(t, req)
		wantError(t, err, providers.ClassPermanent, providers.ReasonInvalidClientAssertion)
	})
}
