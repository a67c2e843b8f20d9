package providers

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"testing"
)

// RFC 7638 §3.1's example: an RSA public key and its SHA-256 thumbprint.
const (
	rfc7638Modulus    = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	rfc7638Exponent   = "AQAB"
	rfc7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)

func TestPublicKeyThumbprintIsRFC7638sExample(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString(rfc7638Modulus)
	if err != nil {
		t.Fatal(err)
	}
	e, err := base64.RawURLEncoding.DecodeString(rfc7638Exponent)
	if err != nil {
		t.Fatal(err)
	}
	public := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	got, perr := publicKeyThumbprint(public)
	if perr != nil {
		t.Fatal(perr)
	}
	if got != rfc7638Thumbprint {
		t.Fatalf("thumbprint %s, RFC 7638 §3.1 says %s", got, rfc7638Thumbprint)
	}
}

func TestKeyThumbprintOfAPrivateKeyIsItsPublicKeysThumbprintInEveryPEMForm(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	want, perr := publicKeyThumbprint(&ec.PublicKey)
	if perr != nil {
		t.Fatal(perr)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	for name, block := range map[string]*pem.Block{
		"PKCS #8": {Type: "PRIVATE KEY", Bytes: pkcs8},
		"SEC 1":   {Type: "EC PRIVATE KEY", Bytes: sec1},
	} {
		got, perr := KeyThumbprint(Secret(pem.EncodeToMemory(block)))
		if perr != nil || got != want {
			t.Errorf("%s: thumbprint %q (%v), want %q", name, got, perr, want)
		}
	}
	if _, perr := KeyThumbprint(Secret("demo-not-a-key")); perr == nil {
		t.Error("a value that holds no PEM key has a thumbprint")
	}
}
