package providers

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ClientAssertionType is RFC 7523 §2.2's client_assertion_type for a JWT client assertion.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// AssertionLifetime is how long a client assertion is valid. It is a bearer credential while
// it lives, and it is used once, at once: a minute covers clock skew and nothing more.
const AssertionLifetime = 60 * time.Second

// Signing algorithms of a client assertion: the ones FAPI and the banks' servers accept.
const (
	AlgorithmRS256 = "RS256"
	AlgorithmPS256 = "PS256"
	AlgorithmES256 = "ES256"
)

// minRSAKeyBits is FAPI's floor for an RSA key.
const minRSAKeyBits = 2048

// SigningAlgorithms lists the algorithms a client assertion may be signed with.
func SigningAlgorithms() []string { return []string{AlgorithmRS256, AlgorithmPS256, AlgorithmES256} }

// assertionSigner is a parsed AssertionKey, ready to sign.
type assertionSigner struct {
	method   jwt.SigningMethod
	key      crypto.Signer
	keyID    string
	audience string
}

// newAssertionSigner parses the key and matches it with the algorithm. Its errors name the
// problem, never the key.
func newAssertionSigner(k AssertionKey, endpoint string) (*assertionSigner, *Error) {
	if k.PrivateKey.IsZero() {
		return nil, configError(ReasonInvalidClientAssertion, "PrivateKeyJWT client authentication needs a private key to sign the client assertion")
	}
	key, err := parsePrivateKey([]byte(k.PrivateKey.Reveal()))
	if err != nil {
		return nil, err
	}
	method, err := signingMethod(key, k.Algorithm)
	if err != nil {
		return nil, err
	}
	audience := k.Audience
	if audience == "" {
		audience = endpoint
	}
	return &assertionSigner{method: method, key: key, keyID: k.KeyID, audience: audience}, nil
}

// parsePrivateKey reads the first PEM private key: PKCS #8 (openssl genpkey), PKCS #1 or SEC 1.
func parsePrivateKey(pemBytes []byte) (crypto.Signer, *Error) {
	var block *pem.Block
	for rest := pemBytes; ; {
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, configError(ReasonInvalidClientAssertion, "the client assertion key holds no PEM private key")
		}
		if block.Type == "PRIVATE KEY" || block.Type == "RSA PRIVATE KEY" || block.Type == "EC PRIVATE KEY" {
			break
		}
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		// crypto/x509's message names the structure at fault, never the key's bytes.
		return nil, configError(ReasonInvalidClientAssertion, "the client assertion key cannot be read: %v", err)
	}
	switch key := key.(type) {
	case *rsa.PrivateKey:
		return key, nil
	case *ecdsa.PrivateKey:
		return key, nil
	}
	return nil, configError(ReasonInvalidClientAssertion, "the client assertion key is a %T; use an RSA or a P-256 EC key", key)
}

// signingMethod checks that the algorithm suits the key, choosing it when unset.
func signingMethod(key crypto.Signer, algorithm string) (jwt.SigningMethod, *Error) {
	switch key := key.(type) {
	case *rsa.PrivateKey:
		if key.N.BitLen() < minRSAKeyBits {
			return nil, configError(ReasonInvalidClientAssertion, "the client assertion key is RSA of %d bits; at least %d are required", key.N.BitLen(), minRSAKeyBits)
		}
		switch algorithm {
		case "", AlgorithmRS256:
			return jwt.SigningMethodRS256, nil
		case AlgorithmPS256:
			return jwt.SigningMethodPS256, nil
		}
	case *ecdsa.PrivateKey:
		if key.Curve != elliptic.P256() {
			return nil, configError(ReasonInvalidClientAssertion, "the client assertion key is EC on %s; ES256 needs P-256", key.Curve.Params().Name)
		}
		if algorithm == "" || algorithm == AlgorithmES256 {
			return jwt.SigningMethodES256, nil
		}
	}
	if !slices.Contains(SigningAlgorithms(), algorithm) {
		return nil, configError(ReasonInvalidClientAssertion, "signing algorithm %q is not one of RS256, PS256 or ES256", algorithm)
	}
	return nil, configError(ReasonInvalidClientAssertion, "signing algorithm %s does not suit the client assertion key (RS256 and PS256 need an RSA key, ES256 a P-256 EC key)", algorithm)
}

// sign makes a client assertion (RFC 7523 §3): the client is issuer and subject, the audience
// is the token endpoint (or what the spec says), and jti is never used twice.
func (s *assertionSigner) sign(clientID, jti string, now time.Time) (Secret, *Error) {
	token := jwt.NewWithClaims(s.method, jwt.MapClaims{
		"iss": clientID,
		"sub": clientID,
		"aud": s.audience,
		"jti": jti,
		"iat": now.Unix(),
		"exp": now.Add(AssertionLifetime).Unix(),
	})
	if s.keyID != "" {
		token.Header["kid"] = s.keyID
	}
	signed, err := token.SignedString(s.key)
	if err != nil {
		return "", configError(ReasonInvalidClientAssertion, "signing the client assertion failed: %v", err)
	}
	return Secret(signed), nil
}
