package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Condition reasons of a spec that names an issuer (see BankClient.issuer).
const (
	// ReasonClientAuthenticationNotSupported: the issuer's metadata does not list the
	// spec's client authentication method; nothing is sent (Stalled).
	ReasonClientAuthenticationNotSupported = "ClientAuthenticationNotSupported"
	// ReasonSigningAlgorithmNotSupported: the issuer's metadata does not list the client
	// assertion's signing algorithm; nothing is sent (Stalled).
	ReasonSigningAlgorithmNotSupported = "SigningAlgorithmNotSupported"
	// ReasonIssuerMetadataUnavailable: the issuer's metadata could not be read; the last
	// document read is used meanwhile, and the read is retried with backoff.
	ReasonIssuerMetadataUnavailable = "IssuerMetadataUnavailable"
	// ReasonIssuerMetadataInvalid: the issuer's metadata came but cannot be used (another
	// issuer, an endpoint refused); the last good document is used meanwhile.
	ReasonIssuerMetadataInvalid = "IssuerMetadataInvalid"
)

// EndpointSource says where an endpoint in use came from.
// +kubebuilder:validation:Enum=Spec;IssuerMetadata;IssuerMetadataMTLSAlias;ProviderDefault
type EndpointSource string

const (
	// EndpointFromSpec: the spec names it.
	EndpointFromSpec EndpointSource = "Spec"
	// EndpointFromIssuerMetadata: the issuer's metadata names it.
	EndpointFromIssuerMetadata EndpointSource = "IssuerMetadata"
	// EndpointFromMTLSAlias: the issuer's metadata names it in mtls_endpoint_aliases (RFC 8705 §5).
	EndpointFromMTLSAlias EndpointSource = "IssuerMetadataMTLSAlias"
	// EndpointFromProviderDefault: the provider's server software serves it beside the token endpoint.
	EndpointFromProviderDefault EndpointSource = "ProviderDefault"
)

// EndpointsStatus says which endpoints a request that names an issuer uses, where each came
// from, and when the issuer's metadata was read.
type EndpointsStatus struct {
	// issuer is the spec's issuer.
	Issuer string `json:"issuer"`

	// metadataURL is where the metadata was read: RFC 8414's location or OpenID Connect
	// Discovery's.
	// +optional
	MetadataURL string `json:"metadataURL,omitempty"`

	// metadataReadAt is when the metadata in use was read.
	// +optional
	MetadataReadAt *metav1.Time `json:"metadataReadAt,omitempty"`

	// metadataError says why the last read of the metadata failed (reason: message); empty
	// after a good read. The document read before is used meanwhile.
	// +optional
	MetadataError string `json:"metadataError,omitempty"`

	// tokenEndpoint is the token endpoint calls go to.
	// +optional
	TokenEndpoint string `json:"tokenEndpoint,omitempty"`

	// tokenEndpointSource says where tokenEndpoint came from.
	// +optional
	TokenEndpointSource EndpointSource `json:"tokenEndpointSource,omitempty"`

	// revocationEndpoint is where grants the operator stops using are revoked; empty when
	// there is none.
	// +optional
	RevocationEndpoint string `json:"revocationEndpoint,omitempty"`

	// revocationEndpointSource says where revocationEndpoint came from.
	// +optional
	RevocationEndpointSource EndpointSource `json:"revocationEndpointSource,omitempty"`

	// assertionAudience is the client assertion's aud (PrivateKeyJWT only).
	// +optional
	AssertionAudience string `json:"assertionAudience,omitempty"`

	// assertionAudienceSource says where assertionAudience came from.
	// +optional
	AssertionAudienceSource EndpointSource `json:"assertionAudienceSource,omitempty"`
}
