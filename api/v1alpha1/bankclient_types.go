package v1alpha1

// BankClient describes one client at a bank's token endpoint: the provider's dialect, the
// endpoints, the credentials, how the client proves itself, headers and TLS. A
// BankTokenRequest carries one inline, or names a BankConnection or ClusterBankConnection
// that holds it for many requests.
type BankClient struct {
	// provider selects the bank's dialect: grant, client authentication, body encoding,
	// required headers and error format. One of RAKBank (internal client auth),
	// RAKBankPartner (partner auth: JSON body, IBM client headers, MsgId, mTLS), Banfico
	// (Keycloak), Mbanq (password grant, tenantId header or ?tenantIdentifier=), Paymob (password grant,
	// rotating refresh tokens), or OAuth2 for any RFC 6749 token endpoint.
	// Required on a connection, and on a request that names no connection.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// endpoint is the full URL of the token endpoint, for example
	// https://stagingpayouts.paymobsolutions.com/api/secure/o/token/. It must be https;
	// the operator refuses http unless it was started with --allow-insecure-endpoints (tests only).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['https', 'http'] && url(self).getHostname() != ''",message="endpoint must be an absolute https URL such as https://bank.example/oauth/token"
	// It carries no query string, except MBANQ's tenant as ?tenantIdentifier=.
	Endpoint string `json:"endpoint,omitempty"`

	// issuer is the authorization server's issuer identifier, for example
	// https://auth.bank.example/open-finance. The operator reads its metadata (RFC 8414 at
	// /.well-known/oauth-authorization-server inserted before the issuer's path, else OpenID
	// Connect Discovery at issuer + /.well-known/openid-configuration) over the TLS settings
	// below, and takes from it the token endpoint (mtls_endpoint_aliases' when the client
	// authenticates with a certificate, or presents one to a server that binds tokens to it),
	// the revocation endpoint and the client assertion's audience (the issuer). A spec may
	// name issuer instead of endpoint; endpoint, revocationEndpoint and
	// clientAssertion.audience, when set, win over the metadata. A client authentication
	// method or signing algorithm the metadata does not list is refused before any call.
	// The document's issuer must equal this value exactly. Only for providers whose servers
	// publish metadata (OAuth2, Banfico). See docs/open-finance.md.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['https', 'http'] && url(self).getHostname() != ''",message="issuer must be an absolute https URL such as https://auth.bank.example/open-finance"
	// +kubebuilder:validation:XValidation:rule="!self.contains('?') && !self.contains('#')",message="issuer must carry no query string and no fragment (RFC 8414 section 2)"
	Issuer string `json:"issuer,omitempty"`

	// revocationEndpoint is the bank's RFC 7009 token revocation endpoint, on the token
	// endpoint's scheme and host. Refresh tokens the operator stops using (a primary grant
	// replaced them, or the inputs they were issued under changed) are revoked there once
	// the access token issued with them may no longer be in use, and every one left is
	// revoked when this resource is deleted (a finalizer holds the deletion for at most
	// 30s). Defaults to the provider's where its server software is known: Paymob (Django
	// OAuth Toolkit: .../o/revoke_token/ beside .../o/token/) and Banfico (Keycloak:
	// .../protocol/openid-connect/revoke beside .../token). Without one, grants the
	// operator stops using stay live at the bank until they expire.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['https', 'http'] && url(self).getHostname() != ''",message="revocationEndpoint must be an absolute https URL such as https://bank.example/oauth/revoke"
	// +kubebuilder:validation:XValidation:rule="!isURL(self) || url(self).getQuery().size() == 0",message="revocationEndpoint must not carry a query string"
	RevocationEndpoint string `json:"revocationEndpoint,omitempty"`

	// refreshRevokesAccessToken says that the bank's refresh revokes, at once, the access
	// token issued with the refresh token it spends (Django OAuth Toolkit and Spring's
	// OAuth2 token services do). The operator then keeps two refresh chains and never
	// refreshes the one whose access token workloads may still hold. Only for provider
	// OAuth2; the other providers' presets know (Paymob and Mbanq revoke).
	// +optional
	RefreshRevokesAccessToken *bool `json:"refreshRevokesAccessToken,omitempty"`

	// grantType is the grant used to obtain a new token: client_credentials or password.
	// Defaults to the provider's: password for Mbanq and Paymob, client_credentials otherwise.
	// When the bank issues a refresh token the operator uses the refresh_token grant to renew,
	// and falls back to this grant when the refresh token is rejected.
	// +optional
	GrantType GrantType `json:"grantType,omitempty"`

	// credentialsSecretRef names a Secret holding the client id and
	// secret and, for the password grant, the username and password: in the namespace of
	// the request or BankConnection, or a ClusterBankConnection's credentials namespace.
	// Required on a connection, and on a request that names no connection.
	// +optional
	CredentialsSecretRef CredentialsSecretReference `json:"credentialsSecretRef,omitzero"`

	// clientAuthentication says how the client proves who it is: Basic (client id and secret
	// as HTTP Basic), Body (client_id and client_secret form fields), Headers
	// (X-IBM-Client-Id and X-IBM-Client-Secret, RAKBankPartner only), PrivateKeyJWT (a JWT
	// signed with the key in clientAssertion.privateKeySecretRef, RFC 7523; OAuth2 and
	// Banfico), TLSClientAuth (the CA-issued client certificate of
	// tls.clientCertificateSecretRef, RFC 8705 §2.1; OAuth2 and Banfico) or
	// SelfSignedTLSClientAuth (a self-signed certificate registered at the bank, RFC 8705
	// §2.2; OAuth2). With PrivateKeyJWT and the certificate methods only client_id is read
	// from the credentials Secret, and no secret is sent. Defaults to the provider's:
	// Headers for RAKBankPartner, Body for Mbanq, Basic otherwise.
	// +optional
	ClientAuthentication ClientAuthentication `json:"clientAuthentication,omitempty"`

	// clientAssertion configures PrivateKeyJWT client authentication: the private key that
	// signs each call's client assertion, and the assertion's kid, algorithm and audience.
	// Required with clientAuthentication PrivateKeyJWT, refused with any other.
	// +optional
	ClientAssertion *ClientAssertion `json:"clientAssertion,omitempty"`

	// headers are extra, non-secret request headers, for example MBANQ's tenantId and
	// device headers. Headers the operator sets itself (Authorization, Content-Type, MsgId,
	// X-IBM-Client-*) cannot be set here.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=20
	Headers []HTTPHeader `json:"headers,omitempty"`

	// metadata is sent as the oauth_metadata object of a RAKBankPartner request, for
	// example account_id or emirates_id. Only for RAKBankPartner.
	// +optional
	// +kubebuilder:validation:MaxProperties=20
	Metadata map[string]string `json:"metadata,omitempty"`

	// tls configures trust of a private CA and a client certificate for mutual TLS.
	// +optional
	TLS *TLSConfig `json:"tls,omitempty"`

	// fapiInteractionID says whether every token call and revocation call carries a fresh
	// x-fapi-interaction-id header (FAPI 1.0 Part 1 §6.2.1, FAPI 2.0; an RFC 4122 UUID), so
	// that a bank's support desk can find the call: Enabled or Disabled. The id is logged
	// with the call's outcome, named in the Warning event of a failed call and shown in
	// status.lastAttempt. When enabled, a header of that name in headers is replaced by the
	// fresh id, so that one is sent. Unset means Enabled for a provider the operator knows as
	// a FAPI server and Disabled otherwise: none of today's providers is known as one (the
	// five banks' documents do not name FAPI), so an open-finance server reached with
	// provider OAuth2 opts in here.
	// +optional
	FAPIInteractionID FAPIInteractionIDMode `json:"fapiInteractionID,omitempty"`

	// tokenRequestParameters are extra parameters sent in the body of every grant
	// (client_credentials, password and refresh_token), never in a revocation: for example
	// audience, or RFC 8707's resource, once per target (a name may repeat). Not for a
	// secret: they are stored in the resource. Names the operator sets itself (grant_type,
	// client_id, scope, ...) are refused. Only for provider OAuth2: the banks' documents list
	// every field their endpoints take. A change of them means a new grant: a refresh token
	// is never sent with parameters other than those it was issued under.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	TokenRequestParameters []TokenRequestParameter `json:"tokenRequestParameters,omitempty"`
}

// FAPIInteractionIDMode turns the x-fapi-interaction-id header on or off.
// +kubebuilder:validation:Enum=Enabled;Disabled
type FAPIInteractionIDMode string

const (
	// FAPIInteractionIDEnabled sends a fresh x-fapi-interaction-id with every call.
	FAPIInteractionIDEnabled FAPIInteractionIDMode = "Enabled"
	// FAPIInteractionIDDisabled sends none (a header of that name in headers goes as set).
	FAPIInteractionIDDisabled FAPIInteractionIDMode = "Disabled"
)
