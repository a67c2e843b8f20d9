// Package providers talks to banks' OAuth2-style token endpoints. It knows nothing of
// Kubernetes: the controller hands it a plain Request and gets back a Token or an *Error
// whose Class says what to do next.
package providers

import (
	"time"
)

// Name identifies a bank's token endpoint dialect.
type Name string

const (
	// RAKBank is RAKBANK's internal client auth endpoint (/v1/int_client_auth/token).
	RAKBank Name = "RAKBank"
	// RAKBankPartner is RAKBANK's partner auth endpoint (/v1/partner_auth/token): JSON body,
	// X-IBM-Client-Id/Secret headers, a fresh MsgId per call, oauth_metadata.
	RAKBankPartner Name = "RAKBankPartner"
	// Banfico is Banfico's Keycloak realm: Basic auth, client_credentials.
	Banfico Name = "Banfico"
	// Mbanq is MBANQ's /oauth/token: password grant, credentials in the form, tenantId header.
	Mbanq Name = "Mbanq"
	// Paymob is Paymob payouts' Django OAuth Toolkit server: password grant, rotated refresh tokens.
	Paymob Name = "Paymob"
	// OAuth2 is any RFC 6749 token endpoint; the user chooses grant and client authentication.
	OAuth2 Name = "OAuth2"
)

// GrantType is an RFC 6749 grant.
type GrantType string

const (
	GrantClientCredentials GrantType = "client_credentials"
	GrantPassword          GrantType = "password"
	GrantRefreshToken      GrantType = "refresh_token"
)

// ClientAuthentication says how the client proves who it is to the token endpoint.
type ClientAuthentication string

const (
	// ClientAuthBasic sends them as HTTP Basic, each form-urlencoded first (RFC 6749 §2.3.1).
	ClientAuthBasic ClientAuthentication = "Basic"
	// ClientAuthBody sends them as client_id and client_secret body fields.
	ClientAuthBody ClientAuthentication = "Body"
	// ClientAuthHeaders sends them as vendor headers (X-IBM-Client-Id / X-IBM-Client-Secret).
	ClientAuthHeaders ClientAuthentication = "Headers"
	// ClientAuthPrivateKeyJWT sends client_id and a JWT the client signed with its private
	// key (RFC 7523 §2.2, OpenID Connect private_key_jwt); no client secret travels.
	ClientAuthPrivateKeyJWT ClientAuthentication = "PrivateKeyJWT"
	// ClientAuthTLS authenticates the client by the CA-issued certificate it presents in
	// the TLS handshake (RFC 8705 §2.1, tls_client_auth); only client_id travels.
	ClientAuthTLS ClientAuthentication = "TLSClientAuth"
	// ClientAuthSelfSignedTLS authenticates the client by a self-signed certificate the bank
	// has registered (RFC 8705 §2.2, self_signed_tls_client_auth); only client_id travels.
	ClientAuthSelfSignedTLS ClientAuthentication = "SelfSignedTLSClientAuth"
)

// SendsClientSecret says whether the method sends the client secret (Body may send none,
// for a public client).
func (a ClientAuthentication) SendsClientSecret() bool {
	return a == ClientAuthBasic || a == ClientAuthBody || a == ClientAuthHeaders
}

// IsCertificateBased says whether the client certificate authenticates the client (RFC 8705).
func (a ClientAuthentication) IsCertificateBased() bool {
	return a == ClientAuthTLS || a == ClientAuthSelfSignedTLS
}

// Secret is a credential or token. It prints as [redacted] so that a stray %v, %s, %q or
// %#v in a log line or error cannot leak it; use Reveal where the value is really needed.
type Secret string

const redacted = "[redacted]"

func (Secret) String() string   { return redacted }
func (Secret) GoString() string { return redacted }

// MarshalText keeps json/yaml encoders from writing the value by accident.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Reveal returns the secret value. Call it only where the value is sent or stored.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether no value is held.
func (s Secret) IsZero() bool { return s == "" }

// Credentials are what the bank knows the client (and, for password grants, the user) by.
type Credentials struct {
	ClientID     string
	ClientSecret Secret
	Username     string
	Password     Secret
	// MaskIdentifiers says the client id and username came from a key the user chose rather
	// than the usual one, and may hold any value of their Secret: they are then masked in
	// whatever the bank echoes, like a secret.
	MaskIdentifiers bool
	// AssertionKey signs the client assertion of PrivateKeyJWT client authentication; it is
	// zero for every other method.
	AssertionKey AssertionKey
}

// AssertionKey is the private key that signs PrivateKeyJWT client assertions, and how.
type AssertionKey struct {
	// PrivateKey is a PEM private key: PKCS #8, PKCS #1 (RSA) or SEC 1 (EC).
	PrivateKey Secret
	// KeyID is sent as the JWS kid header when set, so the bank can pick the key from its set.
	KeyID string
	// Algorithm is RS256, PS256 or ES256; empty means RS256 for an RSA key, ES256 for a P-256 key.
	Algorithm string
	// Audience is the assertion's aud; empty means the token endpoint.
	Audience string
}

// Header is a non-secret extra request header.
type Header struct {
	Name  string
	Value string
}

// Parameter is a non-secret extra token-request parameter, such as audience or RFC 8707's
// resource; a name may repeat.
type Parameter struct {
	Name  string
	Value string
}

// TLSMaterial is PEM-encoded trust and identity for the call. Empty fields mean the
// system roots and no client certificate.
type TLSMaterial struct {
	// CABundle holds PEM certificates trusted in place of the system roots.
	CABundle []byte
	// ClientCertificate and ClientKey are a PEM pair presented for mutual TLS.
	ClientCertificate []byte
	ClientKey         Secret
}

// Request is one token call. With RefreshToken set the refresh_token grant is used;
// otherwise GrantType (or the provider's default).
type Request struct {
	Provider      Name
	TokenEndpoint string
	// GrantType is the primary grant; empty means the provider's default.
	GrantType GrantType
	// ClientAuthentication empty means the provider's default.
	ClientAuthentication ClientAuthentication
	Scope                string
	Credentials          Credentials
	Headers              []Header
	// Metadata is sent as RAKBANK partner's oauth_metadata object.
	Metadata map[string]string
	// Parameters are added to the body of every grant (never to a revocation), in order,
	// where the preset AcceptsTokenRequestParameters.
	Parameters []Parameter
	// InteractionID, when set, is sent as the x-fapi-interaction-id header, replacing a
	// header of that name in Headers so that only one is sent. Give each call a fresh one
	// (NewInteractionID): it names that one call to the bank.
	InteractionID string
	TLS           TLSMaterial
	// RefreshToken, when set, makes this a refresh_token grant call.
	RefreshToken Secret
	// DefaultLifetime applies when the response has neither expires_in nor a JWT exp claim.
	DefaultLifetime time.Duration
	// AllowInsecureHTTP permits an http:// endpoint (tests and local sandboxes only).
	AllowInsecureHTTP bool
}

// Token is what a successful call returned.
type Token struct {
	AccessToken Secret
	// TokenType is normalised: "Bearer" for any casing of bearer, otherwise as sent.
	TokenType string
	// RefreshToken is empty when the bank issued none. When it is set on a refresh, it
	// replaces the one sent (rotation): the caller must persist it before relying on it.
	RefreshToken Secret
	// Scope is the granted scope, or the requested one when the response omits it.
	Scope     string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// RefreshExpiresAt is zero when unknown or when the refresh token does not expire by time.
	RefreshExpiresAt time.Time
	// CertificateThumbprint is the cnf x5t#S256 claim of a JWT access token bound to the
	// client certificate (RFC 8705 §3.1): base64url SHA-256 of the certificate's DER. It is
	// empty when the bank did not say the token is bound (or the token is not a JWT).
	CertificateThumbprint string
}
