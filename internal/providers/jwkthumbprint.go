package providers

import (
	"crypto"
	"encoding/base64"

	jose "github.com/go-jose/go-jose/v3"
)

// KeyThumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url without padding) of the
// public half of a PEM private key that signs client assertions: what a bank or a trust
// framework's directory registers as the key's kid when the client gives none. It reveals
// nothing of the private key. Its errors name the problem, never the key.
func KeyThumbprint(privateKeyPEM Secret) (string, *Error) {
	key, err := parsePrivateKey([]byte(privateKeyPEM.Reveal()))
	if err != nil {
		return "", err
	}
	return publicKeyThumbprint(key.Public())
}

// publicKeyThumbprint is RFC 7638 §3's thumbprint of a public key, by go-jose, which builds
// the required members in lexicographic order without whitespace (§3.2, §3.3).
func publicKeyThumbprint(public crypto.PublicKey) (string, *Error) {
	sum, err := (&jose.JSONWebKey{Key: public}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", configError(ReasonInvalidClientAssertion, "the client assertion key has no JWK thumbprint: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}
