package sandbox

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Endpoints beyond the five banks' documented ones: servers whose clients authenticate the
// way open-banking (FAPI) banks require, without any client secret.
const (
	// SignedJWTRealm is a Keycloak realm, as Banfico runs, whose client authenticates only
	// with the "Signed JWT" authenticator (private_key_jwt).
	SignedJWTRealm providers.Name = "SignedJWTRealm"
	// MTLSServer is an open-banking authorization server whose client authenticates only by
	// its certificate (tls_client_auth, RFC 8705 §2.1) and whose tokens are bound to it.
	MTLSServer providers.Name = "MTLSServer"
)

// fapiEndpoints are the servers above: the provider dialect a client speaks to each, and
// the one client authentication each accepts.
var fapiEndpoints = map[providers.Name]struct {
	provider providers.Name
	method   providers.ClientAuthentication
}{
	SignedJWTRealm: {providers.Banfico, providers.ClientAuthPrivateKeyJWT},
	MTLSServer:     {providers.OAuth2, providers.ClientAuthTLS},
}

// fapiClient is what a FAPI endpoint registered of its one client, and its replay cache.
type fapiClient struct {
	method providers.ClientAuthentication
	// keyPEM, keyID and publicKey: the client's assertion key (SignedJWTRealm).
	keyPEM    []byte
	keyID     string
	publicKey any
	// otherKeys are further public keys registered by kid, as a JWKS holds the key in use
	// and the next one while a client rotates (SignedJWTRealm).
	otherKeys map[string]any
	// accepted records each accepted assertion's kid and time (SignedJWTRealm).
	accepted []AcceptedAssertion
	// subject is the registered certificate subject, tls_client_auth_subject_dn (MTLSServer).
	subject string
	// usedJTIs remembers each assertion's jti until it expires.
	usedJTIs map[string]time.Time
}

// AllBanks lists every endpoint served: the five banks, then the FAPI ones.
func AllBanks() []providers.Name { return append(Banks(), SignedJWTRealm, MTLSServer) }

// ProviderOf is the provider a client names to talk to bank: bank itself for the five banks.
func ProviderOf(bank providers.Name) providers.Name {
	if e, ok := fapiEndpoints[bank]; ok {
		return e.provider
	}
	return bank
}

// ClientAuthenticationOf is the one client authentication bank accepts; "" for the five
// banks, which follow their provider's default.
func ClientAuthenticationOf(bank providers.Name) providers.ClientAuthentication {
	return fapiEndpoints[bank].method
}

// BankFor is the sandbox endpoint that serves a request for provider with method.
func BankFor(provider providers.Name, method providers.ClientAuthentication) providers.Name {
	for bank, e := range fapiEndpoints {
		if e.provider == provider && e.method == method {
			return bank
		}
	}
	return provider
}

// fapiBanks are the FAPI endpoints' entries in the bank table; registerFAPIClients gives
// them their clients once the CA exists.
func fapiBanks() map[providers.Name]*bank {
	return map[providers.Name]*bank{
		SignedJWTRealm: {
			slug: "signed-jwt", path: "/signed-jwt/auth/realms/open-banking/protocol/openid-connect/token", serve: serveSignedJWT,
			creds: BankCredentials{ClientID: "demo-signed-jwt-client", Scope: "accounts payments"}, extraScopes: []string{keycloakOfflineScope},
		},
		MTLSServer: {
			slug: "mtls", path: "/mtls/oauth2/token", serve: serveTLSClientAuth, protectedAPI: "/mtls/api/accounts",
			creds: BankCredentials{ClientID: "demo-mtls-client", Scope: "accounts"},
		},
	}
}

// registerFAPIClients makes each FAPI endpoint's client: an ES256 key for the signed-JWT
// realm; for the mTLS server, the subject of the client certificate RAKBANK partner's
// mutual TLS takes too, so that one client certificate Secret serves both.
func (s *Server) registerFAPIClients() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	s.banks[SignedJWTRealm].fapi = &fapiClient{method: providers.ClientAuthPrivateKeyJWT,
		keyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), keyID: "demo-signed-jwt-key-1",
		publicKey: &key.PublicKey, usedJTIs: map[string]time.Time{}}

	block, _ := pem.Decode(s.clientCertPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	s.banks[MTLSServer].fapi = &fapiClient{method: providers.ClientAuthTLS, subject: cert.Subject.String()}
	return nil
}

// ClientAssertionKey is the PEM private key (PKCS #8, P-256) and kid whose public key
// SignedJWTRealm holds for its client.
func (s *Server) ClientAssertionKey() (keyPEM []byte, keyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.banks[SignedJWTRealm].fapi
	return slices.Clone(c.keyPEM), c.keyID
}

// SetAssertionPublicKey registers another public key (a crypto.PublicKey) for
// SignedJWTRealm's client, as a bank does when the client rotates its key; assertions
// signed with the old key are refused from then on.
func (s *Server) SetAssertionPublicKey(publicKey any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.banks[SignedJWTRealm].fapi.publicKey = publicKey
}

// RegisterAssertionKey registers another public key for SignedJWTRealm's client under kid,
// beside the keys it holds: the realm takes an assertion signed by any of them, chosen by
// the assertion's kid header, as a JWKS with a key in use and the next one.
func (s *Server) RegisterAssertionKey(kid string, publicKey any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.banks[SignedJWTRealm].fapi
	if c.otherKeys == nil {
		c.otherKeys = map[string]any{}
	}
	c.otherKeys[kid] = publicKey
}

// AcceptedAssertion is a client assertion SignedJWTRealm accepted: its kid header ("" for
// none) and when.
type AcceptedAssertion struct {
	KeyID string
	At    time.Time
}

// AcceptedAssertions lists the assertions SignedJWTRealm accepted, oldest first.
func (s *Server) AcceptedAssertions() []AcceptedAssertion {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.banks[SignedJWTRealm].fapi.accepted)
}

// publicKeyFor is the registered key an assertion's kid names, as Keycloak looks a client's
// key up: no kid, or the first key's, is the first key; another kid must be registered.
func (c *fapiClient) publicKeyFor(kid string) (any, error) {
	if kid == "" || kid == c.keyID {
		return c.publicKey, nil
	}
	if key, ok := c.otherKeys[kid]; ok {
		return key, nil
	}
	return nil, errors.New("no key registered for the assertion's kid")
}

// fapiRequest completes a providers.Request for a FAPI endpoint.
func (s *Server) fapiRequest(name providers.Name, req *providers.Request) {
	switch name {
	case SignedJWTRealm:
		keyPEM, keyID := s.ClientAssertionKey()
		req.ClientAuthentication = providers.ClientAuthPrivateKeyJWT
		req.Credentials.AssertionKey = providers.AssertionKey{PrivateKey: providers.Secret(keyPEM), KeyID: keyID}
	case MTLSServer:
		req.GrantType, req.ClientAuthentication = providers.GrantClientCredentials, providers.ClientAuthTLS
		certPEM, keyPEM := s.ClientCertificate()
		req.TLS.ClientCertificate, req.TLS.ClientKey = certPEM, providers.Secret(keyPEM)
	}
}

// CertificateThumbprint is RFC 8705's x5t#S256 of a PEM certificate: what a bound token's
// cnf claim holds.
func CertificateThumbprint(certPEM []byte) string {
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return ""
	}
	sum := sha256.Sum256(block.Bytes)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// x5tS256 is RFC 8705 §3.1's confirmation method value: the base64url SHA-256 of the
// certificate's DER.
func x5tS256(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// refuseSecrets answers a FAPI call that also sent a client secret: these clients have none.
func refuseSecrets(r *http.Request, form map[string][]string) bool {
	_, hasSecret := form["client_secret"]
	return r.Header.Get("Authorization") != "" || hasSecret
}
