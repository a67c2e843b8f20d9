package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provider, GrantType and ClientAuthentication, with their values, are generated from the
// providers' preset table into zz_generated.bankmatrix.go.

// Keys of the output Secret that workloads mount.
const (
	SecretKeyAccessToken   = "access_token"
	SecretKeyTokenType     = "token_type"
	SecretKeyExpiresAt     = "expires_at"
	SecretKeyScope         = "scope"
	SecretKeyAuthorization = "authorization"
)

// Default key names in the credentials Secret.
const (
	DefaultClientIDKey     = "client_id"
	DefaultClientSecretKey = "client_secret"
	DefaultUsernameKey     = "username"
	DefaultPasswordKey     = "password"
	DefaultCABundleKey     = "ca.crt"
	// DefaultPrivateKeyKey holds the PEM key that signs PrivateKeyJWT client assertions.
	DefaultPrivateKeyKey = "private.key"
	// DefaultKeyIDKey, when present in the key's Secret, is the assertion's kid.
	DefaultKeyIDKey = "kid"
	// NextPrivateKeyKey, in the same Secret, is the PEM key that replaces the current one
	// at clientAssertion.nextKeyFrom: registered at the bank before it signs anything.
	NextPrivateKeyKey = "next.key"
	// NextKeyIDKey, when present beside it, is the next key's kid.
	NextKeyIDKey = "next.kid"
)

// Keys of the output Secret written only for a certificate-bound token (RFC 8705 §3).
const (
	// SecretKeyCertificateBound is "true" when the bank bound the token to the client
	// certificate: a workload must present that certificate with the token.
	SecretKeyCertificateBound = "certificate_bound"
	// SecretKeyCertificateThumbprint is the bound certificate's SHA-256 thumbprint as the
	// bank wrote it (cnf x5t#S256: base64url of the DER's SHA-256).
	SecretKeyCertificateThumbprint = "certificate_thumbprint"
)

// Keys of the output Secret written only when spec.certificateDelivery asks for them: the
// names a kubernetes.io/tls Secret uses, so that a workload's TLS library reads them as it
// reads any mounted certificate.
const (
	// SecretKeyClientCertificate is the PEM client certificate chain the token was obtained
	// with (certificateDelivery.certificate).
	SecretKeyClientCertificate = "tls.crt"
	// SecretKeyClientKey is that certificate's PEM private key (certificateDelivery.privateKey).
	SecretKeyClientKey = "tls.key"
)

// Annotations a user may set on a BankTokenRequest.
const (
	// RefreshRequestedAtAnnotation asks for a new token once per distinct value (e.g. a timestamp).
	RefreshRequestedAtAnnotation = "tokens.banktoken.io/refresh-requested-at"
)

// BEGIN bankmatrix spec-rules: generated from internal/providers by make manifests; do not edit.
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'RAKBank' || !has(self.clientAuthentication) || self.clientAuthentication in ['Basic', 'Body']",message="provider RAKBank supports only clientAuthentication Basic or Body"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'RAKBank' || (has(self.scope) && self.scope.trim() != '')",message="provider RAKBank needs a scope, not only spaces"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'RAKBankPartner' || !has(self.grantType) || self.grantType in ['client_credentials']",message="provider RAKBankPartner supports only grantType client_credentials"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'RAKBankPartner' || !has(self.clientAuthentication) || self.clientAuthentication in ['Headers']",message="provider RAKBankPartner supports only clientAuthentication Headers"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'RAKBankPartner' || (has(self.scope) && self.scope.trim() != '' && size(self.scope) <= 500)",message="provider RAKBankPartner needs a scope of 1 to 500 characters, not only spaces"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'Banfico' || !has(self.grantType) || self.grantType in ['client_credentials']",message="provider Banfico supports only grantType client_credentials"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'Banfico' || !has(self.clientAuthentication) || self.clientAuthentication in ['Basic', 'PrivateKeyJWT', 'TLSClientAuth']",message="provider Banfico supports only clientAuthentication Basic, PrivateKeyJWT or TLSClientAuth"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'Mbanq' || !has(self.grantType) || self.grantType in ['password']",message="provider Mbanq supports only grantType password"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'Mbanq' || !has(self.clientAuthentication) || self.clientAuthentication in ['Body']",message="provider Mbanq supports only clientAuthentication Body"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || !has(self.endpoint) || self.provider != 'Mbanq' || (has(self.headers) && self.headers.exists(h, h.name.lowerAscii() == 'tenantid' && h.value != '')) || self.endpoint.matches('[?]tenantIdentifier=[^&#]+')",message="provider Mbanq needs a tenantId header with a value, or the endpoint's query parameter tenantIdentifier"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'Paymob' || !has(self.grantType) || self.grantType in ['password']",message="provider Paymob supports only grantType password"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'Paymob' || !has(self.clientAuthentication) || self.clientAuthentication in ['Basic', 'Body']",message="provider Paymob supports only clientAuthentication Basic or Body"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'OAuth2' || !has(self.clientAuthentication) || self.clientAuthentication in ['Basic', 'Body', 'PrivateKeyJWT', 'TLSClientAuth', 'SelfSignedTLSClientAuth']",message="provider OAuth2 supports only clientAuthentication Basic, Body, PrivateKeyJWT, TLSClientAuth or SelfSignedTLSClientAuth"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || !has(self.endpoint) || self.provider != 'Mbanq' || !self.endpoint.contains('?') || self.endpoint.matches('^[^?#]*[?](tenantIdentifier)=[^&#]*$')",message="provider Mbanq's endpoint may carry only the query parameter tenantIdentifier"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || !has(self.endpoint) || self.provider in ['Mbanq'] || !self.endpoint.contains('?')",message="endpoint must not carry a query string: credentials and parameters go in the request, not the URL"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || !has(self.metadata) || size(self.metadata) == 0 || self.provider in ['RAKBankPartner']",message="metadata (oauth_metadata) is sent only by provider RAKBankPartner"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || !has(self.tokenRequestParameters) || size(self.tokenRequestParameters) == 0 || self.provider in ['OAuth2']",message="tokenRequestParameters are sent only by provider OAuth2: the others' documents list every field they take"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || !has(self.revocationEndpoint) || self.provider in ['RAKBank', 'Banfico', 'Mbanq', 'Paymob', 'OAuth2']",message="revocationEndpoint is used only by provider RAKBank, Banfico, Mbanq, Paymob or OAuth2: the others issue no refresh token to revoke"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || !has(self.issuer) || self.provider in ['Banfico', 'OAuth2']",message="issuer (authorization server metadata) is used only by provider Banfico or OAuth2: the others publish none"
// END bankmatrix spec-rules

// BankTokenRequestSpec is what the user asks for: which bank, which endpoint and scope,
// where the credentials are, and where to write the token. The connection to the bank is
// either written out here (BankClient's fields) or named through connectionRef.
//
// +kubebuilder:validation:XValidation:rule="has(self.connectionRef) || (has(self.provider) && (has(self.endpoint) || has(self.issuer)) && has(self.credentialsSecretRef))",message="provider, endpoint (or issuer) and credentialsSecretRef are required unless connectionRef names a BankConnection or ClusterBankConnection"
// +kubebuilder:validation:XValidation:rule="!has(self.connectionRef) || !(has(self.provider) || has(self.endpoint) || has(self.issuer) || has(self.revocationEndpoint) || has(self.refreshRevokesAccessToken) || has(self.grantType) || has(self.credentialsSecretRef) || has(self.clientAuthentication) || has(self.clientAssertion) || has(self.headers) || has(self.metadata) || has(self.tls) || has(self.fapiInteractionID) || has(self.tokenRequestParameters))",message="with connectionRef, the connection's fields (provider, endpoint, issuer, revocationEndpoint, refreshRevokesAccessToken, grantType, credentialsSecretRef, clientAuthentication, clientAssertion, headers, metadata, tls, fapiInteractionID, tokenRequestParameters) belong to the connection: set them there, not on the request"
// +kubebuilder:validation:XValidation:rule="!(has(self.renewBefore) && has(self.renewBeforePercentage))",message="set at most one of renewBefore and renewBeforePercentage"
// +kubebuilder:validation:XValidation:rule="!has(self.clientAuthentication) || self.clientAuthentication != 'PrivateKeyJWT' || has(self.clientAssertion)",message="clientAuthentication PrivateKeyJWT needs clientAssertion.privateKeySecretRef: the private key that signs the client assertion"
// +kubebuilder:validation:XValidation:rule="!has(self.clientAssertion) || (has(self.clientAuthentication) && self.clientAuthentication == 'PrivateKeyJWT')",message="clientAssertion is used only with clientAuthentication PrivateKeyJWT"
// +kubebuilder:validation:XValidation:rule="!has(self.clientAuthentication) || !(self.clientAuthentication in ['TLSClientAuth', 'SelfSignedTLSClientAuth']) || (has(self.tls) && has(self.tls.clientCertificateSecretRef))",message="clientAuthentication TLSClientAuth and SelfSignedTLSClientAuth need tls.clientCertificateSecretRef: the client certificate is what authenticates the client"
// +kubebuilder:validation:XValidation:rule="!has(self.revocationEndpoint) || !has(self.endpoint) || self.revocationEndpoint.lowerAscii().find('^[a-z][a-z0-9+.-]*://[^/?#]*') == self.endpoint.lowerAscii().find('^[a-z][a-z0-9+.-]*://[^/?#]*')",message="revocationEndpoint must be on the token endpoint's scheme and host: a refresh token is never sent to another host"
// +kubebuilder:validation:XValidation:rule="!has(self.refreshRevokesAccessToken) || (has(self.provider) && self.provider == 'OAuth2')",message="refreshRevokesAccessToken is set only for provider OAuth2: the other providers' behaviour is known"
// +kubebuilder:validation:XValidation:rule="!has(self.certificateDelivery) || !has(self.certificateDelivery.certificate) || !self.certificateDelivery.certificate || has(self.connectionRef) || (has(self.tls) && has(self.tls.clientCertificateSecretRef))",message="certificateDelivery needs tls.clientCertificateSecretRef: the certificate delivered is the client certificate the token is obtained with"
type BankTokenRequestSpec struct {
	// BankClient is the connection to the bank: provider, endpoints, credentials, client
	// authentication, headers and TLS. Set here, or named through connectionRef, not both.
	BankClient `json:",inline"`

	// connectionRef names the BankConnection (in this namespace) or ClusterBankConnection
	// that holds the connection to the bank, instead of the fields above: the request then
	// adds only what is its own (scope, output Secret and template, renewal, suspend).
	// +optional
	ConnectionRef *ConnectionReference `json:"connectionRef,omitempty"`

	// scope is the space-separated scope requested, for example "read write". Required by
	// RAKBank and RAKBankPartner (1 to 500 characters); optional elsewhere.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Scope string `json:"scope,omitempty"`

	// renewBefore is how long before expiry the token is renewed, for example 5m.
	// Mutually exclusive with renewBeforePercentage. When neither is set the token is
	// renewed when two thirds of its lifetime have passed. A value longer than the
	// token's lifetime renews at two thirds of it instead.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="renewBefore must be at least 1s"
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`

	// renewBeforePercentage is the share of the token's lifetime, from 1 to 99, left when it
	// is renewed: 25 renews a one-hour token 15 minutes before it expires.
	// Mutually exclusive with renewBefore.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=99
	RenewBeforePercentage *int32 `json:"renewBeforePercentage,omitempty"`

	// maxRefreshInterval caps the time between refreshes, so that even a token valid for
	// years is renewed this often. Defaults to 24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="maxRefreshInterval must be at least 1m"
	MaxRefreshInterval *metav1.Duration `json:"maxRefreshInterval,omitempty"`

	// secretName is the name of the Secret, in the same namespace, that receives the token
	// under the keys access_token, token_type, expires_at (RFC 3339), scope and
	// authorization ("Bearer <token>"). Defaults to the name of this BankTokenRequest.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SecretName string `json:"secretName,omitempty"`

	// secretTemplate holds labels and annotations copied onto the output Secret.
	// +optional
	SecretTemplate *SecretTemplate `json:"secretTemplate,omitempty"`

	// suspend stops all calls to the bank while true. The token already issued is kept
	// until it expires; nothing is refreshed.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// certificateDelivery writes the client certificate (tls.clientCertificateSecretRef)
	// that the token was obtained with into the output Secret beside the token, and
	// optionally its private key, so that a certificate-bound token and its certificate
	// reach the workload in one update of one Secret. Absent, neither is written.
	// +optional
	CertificateDelivery *CertificateDelivery `json:"certificateDelivery,omitempty"`
}

// CertificateDelivery says which parts of the client certificate the output Secret carries.
// +kubebuilder:validation:XValidation:rule="!has(self.privateKey) || !self.privateKey || (has(self.certificate) && self.certificate)",message="certificateDelivery.privateKey needs certificateDelivery.certificate: a key is of no use without its certificate"
type CertificateDelivery struct {
	// certificate writes the PEM client certificate chain under tls.crt. Defaults to false.
	// +optional
	Certificate bool `json:"certificate,omitempty"`

	// privateKey writes the certificate's PEM private key under tls.key: whoever can read
	// the output Secret can then present the client certificate to the bank. Through a
	// BankConnection or ClusterBankConnection it is written only if the connection's
	// privateKeyDelivery is Allowed. Defaults to false.
	// +optional
	PrivateKey bool `json:"privateKey,omitempty"`
}

// CredentialsSecretReference names a Secret in the BankTokenRequest's namespace and the keys
// to read from it.
type CredentialsSecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// clientIDKey is the key holding the client id. Defaults to client_id.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	ClientIDKey string `json:"clientIDKey,omitempty"`

	// clientSecretKey is the key holding the client secret. Defaults to client_secret.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	ClientSecretKey string `json:"clientSecretKey,omitempty"`

	// usernameKey is the key holding the username for the password grant. Defaults to username.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	UsernameKey string `json:"usernameKey,omitempty"`

	// passwordKey is the key holding the password for the password grant. Defaults to password.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	PasswordKey string `json:"passwordKey,omitempty"`
}

// ClientAssertion is how PrivateKeyJWT client assertions are signed. Each token call sends
// a fresh assertion: iss and sub are the client id, jti is unique, and it expires 60
// seconds after it is made.
type ClientAssertion struct {
	// privateKeySecretRef names a Secret in the same namespace holding the PEM private key
	// (PKCS #8 as openssl genpkey writes it, PKCS #1 or SEC 1): RSA of at least 2048 bits or
	// EC P-256. The bank must hold its public key.
	// +required
	PrivateKeySecretRef PrivateKeySecretReference `json:"privateKeySecretRef"`

	// keyID is sent as the current key's kid header, naming the key in the set the bank
	// holds. Defaults to the value of the key's Secret under keyIDKey, if there is one;
	// otherwise, when nextKeyFrom is set, the key's RFC 7638 JWK thumbprint; otherwise no
	// kid is sent (as before nextKeyFrom existed: a server holding one key for the client,
	// Keycloak's certificate registration for one, may have named it otherwise).
	// +optional
	// +kubebuilder:validation:MaxLength=256
	KeyID string `json:"keyID,omitempty"`

	// nextKeyFrom is when the next key (the key's Secret's next.key, its kid under
	// next.kid or else its RFC 7638 thumbprint) replaces the current one: the operator
	// obtains a token signed with it at that time, and signs every assertion with it from
	// then on. Register the next key at the bank or directory first; status.signingKeys
	// shows each key's thumbprint. Without a next.key in the Secret the current key goes on
	// signing. An RFC 3339 time such as 2026-03-01T09:00:00Z.
	// +optional
	NextKeyFrom *metav1.Time `json:"nextKeyFrom,omitempty"`

	// signingAlgorithm is RS256, PS256 or ES256. Defaults to RS256 for an RSA key and
	// ES256 for an EC key.
	// +optional
	// +kubebuilder:validation:Enum=RS256;PS256;ES256
	SigningAlgorithm string `json:"signingAlgorithm,omitempty"`

	// audience is the assertion's aud claim. Defaults to the endpoint; some servers want
	// their issuer instead, for example https://bank.example/realms/open-banking.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Audience string `json:"audience,omitempty"`
}

// PrivateKeySecretReference names a Secret holding a private key, and the keys to read.
type PrivateKeySecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key holding the PEM private key. Defaults to private.key.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`

	// keyIDKey is the key that, when present, holds the kid. Defaults to kid.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	KeyIDKey string `json:"keyIDKey,omitempty"`
}

// BEGIN bankmatrix header-rules: generated from internal/providers by make manifests; do not edit.
// +kubebuilder:validation:XValidation:rule="!(self.name.lowerAscii() in ['authorization', 'content-type', 'content-length', 'host', 'accept', 'transfer-encoding', 'connection', 'x-ibm-client-id', 'x-ibm-client-secret', 'msgid'])",message="this header is set by the operator and cannot be overridden"
// END bankmatrix header-rules

// HTTPHeader is a non-secret request header.
type HTTPHeader struct {
	// name of the header, an HTTP token such as tenantId or X-Device-Id.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[-!#$%&'*+.^_|~0-9A-Za-z]+$`
	Name string `json:"name"`

	// value of the header; it must not hold a secret, since it is stored in the resource.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^[^\r\n]*$`
	Value string `json:"value"`
}

// BEGIN bankmatrix parameter-rules: generated from internal/providers by make manifests; do not edit.
// +kubebuilder:validation:XValidation:rule="!(self.name.lowerAscii() in ['grant_type', 'scope', 'username', 'password', 'refresh_token', 'client_id', 'client_secret', 'client_assertion_type', 'client_assertion', 'token', 'token_type_hint', 'oauth_metadata'])",message="this parameter is set by the operator and cannot be overridden"
// END bankmatrix parameter-rules

// TokenRequestParameter is a non-secret extra parameter of a token request.
type TokenRequestParameter struct {
	// name of the parameter, an RFC 6749 §8.2 name such as audience or resource.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[-._0-9A-Za-z]+$`
	Name string `json:"name"`

	// value of the parameter; it must not hold a secret, since it is stored in the resource.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	Value string `json:"value"`
}

// TLSConfig configures the TLS connection to the token endpoint.
type TLSConfig struct {
	// caBundleRef names a key holding PEM CA certificates trusted instead of the system
	// roots, for a bank behind a private CA.
	// +optional
	CABundleRef *CABundleReference `json:"caBundleRef,omitempty"`

	// clientCertificateSecretRef names a kubernetes.io/tls Secret (keys tls.crt and tls.key)
	// presented as the client certificate for mutual TLS, as RAKBANK's UAT and production
	// demand. With clientAuthentication TLSClientAuth or SelfSignedTLSClientAuth it is
	// what authenticates the client.
	// +optional
	ClientCertificateSecretRef *LocalSecretReference `json:"clientCertificateSecretRef,omitempty"`
}

// CABundleReference names a key in a ConfigMap or Secret in the same namespace.
type CABundleReference struct {
	// kind of the object holding the bundle: ConfigMap or Secret. Defaults to ConfigMap.
	// +optional
	// +kubebuilder:validation:Enum=ConfigMap;Secret
	Kind string `json:"kind,omitempty"`

	// name of the ConfigMap or Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// key holding the PEM bundle. Defaults to ca.crt.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key,omitempty"`
}

// LocalSecretReference names a Secret in the same namespace.
type LocalSecretReference struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// SecretTemplate holds metadata copied onto the output Secret. It is bounded and checked
// at admission with the apiserver's own rules for labels and annotations: a template the
// apiserver would refuse on the Secret would otherwise cost a bank call per attempt to
// store a token that can never be stored. Keys under tokens.banktoken.io/ are the
// operator's: a template setting one could, for instance, opt an output Secret (another
// request's live token) in as credentials.
type SecretTemplate struct {
	// labels added to the output Secret: at most 32, each a valid label key and value.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && !format.qualifiedName().validate(k).hasValue())",message="a label key must be a qualified name (an optional DNS subdomain prefix and /, then 1 to 63 alphanumerics, '-', '_' or '.')"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('tokens.banktoken.io/'))",message="labels under tokens.banktoken.io/ are set by the operator only"
	Labels map[string]LabelValue `json:"labels,omitempty"`

	// annotations added to the output Secret: at most 32, keys valid annotation keys,
	// each value at most 4096 characters and all of them together at most 16384.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && !format.qualifiedName().validate(k).hasValue())",message="an annotation key must be a qualified name (an optional DNS subdomain prefix and /, then 1 to 63 alphanumerics, '-', '_' or '.')"
	// +kubebuilder:validation:XValidation:rule="self.map(k, size(k) + size(self[k])).sum() <= 16384",message="the annotations together are at most 16384 characters"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('tokens.banktoken.io/'))",message="annotations under tokens.banktoken.io/ are set by the operator only"
	Annotations map[string]AnnotationValue `json:"annotations,omitempty"`
}

// LabelValue is a label value on the output Secret, as the apiserver takes it: at most 63
// alphanumerics, '-', '_' or '.', beginning and ending with an alphanumeric, or empty. A
// type of its own so that the CRD bounds each value (a map's values cannot be bounded
// otherwise), which also keeps the CEL rules over the map cheap.
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
type LabelValue string

// AnnotationValue is an annotation value on the output Secret: at most 4096 characters.
// +kubebuilder:validation:MaxLength=4096
type AnnotationValue string

// LabelMap is the template's labels as a Secret takes them.
func (t *SecretTemplate) LabelMap() map[string]string { return stringMap(t.Labels) }

// AnnotationMap is the template's annotations as a Secret takes them.
func (t *SecretTemplate) AnnotationMap() map[string]string { return stringMap(t.Annotations) }

func stringMap[V ~string](m map[string]V) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// BankTokenRequestStatus is what the operator observed and holds.
type BankTokenRequestStatus struct {
	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready says whether the output Secret holds a valid token; Reconciling
	// (present only when true) says a token is being obtained; Stalled (present only when
	// true) says the operator cannot progress until the spec or a referenced object changes.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// secretName is the Secret that holds the current token.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// tokenType is the token type the bank returned, normally Bearer.
	// +optional
	TokenType string `json:"tokenType,omitempty"`

	// scope is the scope the bank granted.
	// +optional
	Scope string `json:"scope,omitempty"`

	// issuedAt is when the current token was obtained.
	// +optional
	IssuedAt *metav1.Time `json:"issuedAt,omitempty"`

	// expiresAt is when the current token expires.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// renewalTime is when the operator will next renew the token.
	// +optional
	RenewalTime *metav1.Time `json:"renewalTime,omitempty"`

	// lastFailureTime is when the last attempt to obtain a token failed; cleared on success.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`

	// failedAttempts counts consecutive failed attempts; it drives the retry backoff and is
	// reset on success.
	// +optional
	FailedAttempts int32 `json:"failedAttempts,omitempty"`

	// lastFailureRequestHash fingerprints the inputs (the spec and the versions of the
	// referenced Secrets, never their values) of the last failed attempt. When the inputs
	// change the operator retries at once instead of waiting out the backoff.
	// +optional
	LastFailureRequestHash string `json:"lastFailureRequestHash,omitempty"`

	// lastRefreshRequestedAt is the last value of the tokens.banktoken.io/refresh-requested-at
	// annotation acted on.
	// +optional
	LastRefreshRequestedAt string `json:"lastRefreshRequestedAt,omitempty"`

	// clientCertificate describes the client certificate of tls.clientCertificateSecretRef,
	// the one a certificate-bound token is bound to; absent without one.
	// +optional
	ClientCertificate *ClientCertificateStatus `json:"clientCertificate,omitempty"`

	// signingKeys describes the keys of clientAssertion.privateKeySecretRef: the current
	// one and, when the Secret holds one, the next; absent without PrivateKeyJWT.
	// +optional
	// +listType=map
	// +listMapKey=slot
	// +kubebuilder:validation:MaxItems=2
	SigningKeys []SigningKeyStatus `json:"signingKeys,omitempty"`

	// observed records the versions of the Secrets this status was derived from, so that a
	// reconcile with nothing due confirms from the operator's metadata caches that nothing
	// changed, without reading any Secret. Absent while something is left to do (a problem,
	// a failure, a grant waiting to be revoked).
	// +optional
	Observed *ObservedVersions `json:"observed,omitempty"`

	// lastAttempt is the last call to the token endpoint this request made: when, its
	// x-fapi-interaction-id (when sent) and its outcome, so that a bank can be asked about it.
	// +optional
	LastAttempt *TokenCallAttempt `json:"lastAttempt,omitempty"`

	// sharedGrant names the BankTokenRequest that holds the shared grant whose token the
	// output Secret holds (a connection with grantSharing Shared); absent when the output
	// Secret holds the request's own token, or none. The operator keeps that grant live
	// while any request's output Secret holds its token.
	// +optional
	SharedGrant *SharedGrantReference `json:"sharedGrant,omitempty"`

	// endpoints are the endpoints in use and where each came from, and when the issuer's
	// metadata was read; present only when the spec (or its connection) names an issuer.
	// +optional
	Endpoints *EndpointsStatus `json:"endpoints,omitempty"`
}

// TokenCallAttempt is one call to the token endpoint.
type TokenCallAttempt struct {
	// time the call was made.
	// +required
	Time metav1.Time `json:"time"`

	// interactionID is the x-fapi-interaction-id the call carried; empty when none was sent.
	// +optional
	InteractionID string `json:"interactionID,omitempty"`

	// outcome is Succeeded or Failed.
	// +required
	Outcome TokenCallOutcome `json:"outcome"`

	// reason is the failure's reason (as in the Ready condition); empty on success.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// TokenCallOutcome says whether a token call got a token.
// +kubebuilder:validation:Enum=Succeeded;Failed
type TokenCallOutcome string

const (
	TokenCallSucceeded TokenCallOutcome = "Succeeded"
	TokenCallFailed    TokenCallOutcome = "Failed"
)

// SharedGrantReference names the BankTokenRequest that holds a shared grant: the operator
// creates it beside the connection's Secrets.
type SharedGrantReference struct {
	// namespace of the holder: the connection's Secrets namespace.
	Namespace string `json:"namespace"`
	// name of the holder.
	Name string `json:"name"`
}

// ObservedVersions are the resourceVersions the operator last wrote or read, never values.
type ObservedVersions struct {
	// outputSecret is the output Secret's resourceVersion.
	// +optional
	OutputSecret string `json:"outputSecret,omitempty"`

	// refreshTokenSecret is the refresh-token Secret's resourceVersion; empty when there is
	// none.
	// +optional
	RefreshTokenSecret string `json:"refreshTokenSecret,omitempty"`

	// inputs fingerprints the spec, the resourceVersions of the referenced Secrets and
	// ConfigMaps, the finalizer and the operator's settings that shape a decision.
	// +optional
	Inputs string `json:"inputs,omitempty"`
}

// ClientCertificateStatus describes the client certificate presented to the bank.
type ClientCertificateStatus struct {
	// sha256Fingerprint is the SHA-256 of the certificate's DER, in upper-case hex pairs
	// separated by colons, as openssl x509 -noout -fingerprint -sha256 prints it.
	// +optional
	SHA256Fingerprint string `json:"sha256Fingerprint,omitempty"`

	// notAfter is when the certificate expires.
	// +optional
	NotAfter *metav1.Time `json:"notAfter,omitempty"`

	// expiresBeforeToken is true when the certificate expires before the token held: a
	// certificate-bound token stops working with it, and mutual TLS fails from then on.
	// message says what to do.
	// +optional
	ExpiresBeforeToken bool `json:"expiresBeforeToken,omitempty"`

	// message is a warning about the certificate, empty when there is none.
	// +optional
	Message string `json:"message,omitempty"`
}

// SigningKeySlot names a key of the client assertion key's Secret.
// +kubebuilder:validation:Enum=Current;Next
type SigningKeySlot string

const (
	// SigningKeyCurrent is the key under privateKeySecretRef.key (private.key).
	SigningKeyCurrent SigningKeySlot = "Current"
	// SigningKeyNext is the key under next.key.
	SigningKeyNext SigningKeySlot = "Next"
)

// SigningKeyStatus describes one client assertion signing key by its public half only.
type SigningKeyStatus struct {
	// slot is Current (private.key) or Next (next.key).
	Slot SigningKeySlot `json:"slot"`

	// thumbprint is the RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key:
	// the kid a bank or directory registers when the client gives none.
	// +optional
	Thumbprint string `json:"thumbprint,omitempty"`

	// keyID is the kid the operator sends with this key; empty when none is sent.
	// +optional
	KeyID string `json:"keyID,omitempty"`

	// inUse is true for the key that signs the client assertions now.
	// +optional
	InUse bool `json:"inUse,omitempty"`

	// from is when this key began, or begins, to sign (the Next key's nextKeyFrom).
	// +optional
	From *metav1.Time `json:"from,omitempty"`

	// message says why the key cannot be used, empty when it can.
	// +optional
	Message string `json:"message,omitempty"`
}

// BankTokenRequest obtains an access token from a bank's token endpoint, keeps it in a
// Secret that workloads mount, and refreshes it before it expires.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=btr,categories=banktoken
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.status.secretName`,priority=1
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Renewal",type=string,JSONPath=`.status.renewalTime`,priority=1
// +kubebuilder:printcolumn:name="Token Endpoint",type=string,JSONPath=`.status.endpoints.tokenEndpoint`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!has(self.spec.credentialsSecretRef) || self.spec.credentialsSecretRef.name != (has(self.spec.secretName) ? self.spec.secretName : self.metadata.name)",message="the output Secret (spec.secretName, default metadata.name) must not be the credentials Secret"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.secretName) || self.spec.secretName != self.metadata.name + '-refresh-token'",message="spec.secretName must not be metadata.name + '-refresh-token': that is where the operator keeps the refresh token, which workloads must not mount"
type BankTokenRequest struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which bank, endpoint, scope and credentials to use and where to write the token.
	// +required
	Spec BankTokenRequestSpec `json:"spec"`

	// status says what token is held and whether it is healthy.
	// +optional
	Status BankTokenRequestStatus `json:"status,omitempty"`
}

// BankTokenRequestList is a list of BankTokenRequests.
//
// +kubebuilder:object:root=true
type BankTokenRequestList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BankTokenRequest `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BankTokenRequest{}, &BankTokenRequestList{})
}
