package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConnectionReference names the connection a BankTokenRequest gets its tokens through.
type ConnectionReference struct {
	// kind is BankConnection (in the request's own namespace; the default) or
	// ClusterBankConnection. No default is written into the spec: Argo CD would report it
	// out of sync.
	// +optional
	// +kubebuilder:validation:Enum=BankConnection;ClusterBankConnection
	Kind string `json:"kind,omitempty"`

	// name is the connection's name.
	// +required
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// KindOrDefault is the kind the reference names: an empty kind is a BankConnection (the CRD
// writes no default into the spec, which Argo CD would report as drift).
func (r *ConnectionReference) KindOrDefault() string {
	if r.Kind == "" {
		return KindBankConnection
	}
	return r.Kind
}

// Kinds a ConnectionReference names.
const (
	KindBankConnection        = "BankConnection"
	KindClusterBankConnection = "ClusterBankConnection"
)

// GrantSharing says whether the requests of a connection share grants.
// +kubebuilder:validation:Enum=PerRequest;Shared
type GrantSharing string

const (
	// GrantSharingPerRequest: each request holds a grant of its own at the bank.
	GrantSharingPerRequest GrantSharing = "PerRequest"
	// GrantSharingShared: the requests with the same scope share one grant, renewed once
	// for all of them.
	GrantSharingShared GrantSharing = "Shared"
)

// Defaults of a connection's call budget.
const (
	DefaultCallBudgetCalls    = 60
	DefaultCallBudgetInterval = "1m"
)

// CallBudget bounds the token calls made through one connection, by every request that uses
// it together.
type CallBudget struct {
	// calls is the most token calls made in any window of interval. Defaults to 60.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	Calls *int32 `json:"calls,omitempty"`

	// interval is the window calls counts in. Defaults to 1m.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('24h')",message="interval must be from 1s to 24h"
	Interval *metav1.Duration `json:"interval,omitempty"`
}

// NamespaceGate says which namespaces may use a ClusterBankConnection: those named, and
// those whose labels the selector matches. Empty, it admits none.
type NamespaceGate struct {
	// names are namespaces admitted by name.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Names []string `json:"names,omitempty"`

	// selector admits the namespaces whose labels it matches.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// BEGIN bankmatrix connection-rules: generated from internal/providers by make manifests; do not edit.
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'RAKBank' || !has(self.clientAuthentication) || self.clientAuthentication in ['Basic', 'Body']",message="provider RAKBank supports only clientAuthentication Basic or Body"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'RAKBankPartner' || !has(self.grantType) || self.grantType in ['client_credentials']",message="provider RAKBankPartner supports only grantType client_credentials"
// +kubebuilder:validation:XValidation:rule="!has(self.provider) || self.provider != 'RAKBankPartner' || !has(self.clientAuthentication) || self.clientAuthentication in ['Headers']",message="provider RAKBankPartner supports only clientAuthentication Headers"
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
// END bankmatrix connection-rules

// BankConnectionSpec is one client at a bank, and what the requests that use it may do.
//
// +kubebuilder:validation:XValidation:rule="has(self.provider) && (has(self.endpoint) || has(self.issuer)) && has(self.credentialsSecretRef)",message="a connection needs provider, endpoint (or issuer) and credentialsSecretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.clientAuthentication) || self.clientAuthentication != 'PrivateKeyJWT' || has(self.clientAssertion)",message="clientAuthentication PrivateKeyJWT needs clientAssertion.privateKeySecretRef: the private key that signs the client assertion"
// +kubebuilder:validation:XValidation:rule="!has(self.clientAssertion) || (has(self.clientAuthentication) && self.clientAuthentication == 'PrivateKeyJWT')",message="clientAssertion is used only with clientAuthentication PrivateKeyJWT"
// +kubebuilder:validation:XValidation:rule="!has(self.clientAuthentication) || !(self.clientAuthentication in ['TLSClientAuth', 'SelfSignedTLSClientAuth']) || (has(self.tls) && has(self.tls.clientCertificateSecretRef))",message="clientAuthentication TLSClientAuth and SelfSignedTLSClientAuth need tls.clientCertificateSecretRef: the client certificate is what authenticates the client"
// +kubebuilder:validation:XValidation:rule="!has(self.revocationEndpoint) || !has(self.endpoint) || self.revocationEndpoint.lowerAscii().find('^[a-z][a-z0-9+.-]*://[^/?#]*') == self.endpoint.lowerAscii().find('^[a-z][a-z0-9+.-]*://[^/?#]*')",message="revocationEndpoint must be on the token endpoint's scheme and host: a refresh token is never sent to another host"
// +kubebuilder:validation:XValidation:rule="!has(self.refreshRevokesAccessToken) || (has(self.provider) && self.provider == 'OAuth2')",message="refreshRevokesAccessToken is set only for provider OAuth2: the other providers' behaviour is known"
type BankConnectionSpec struct {
	// BankClient is the client at the bank: provider, endpoints, credentials, client
	// authentication, headers and TLS, as a BankTokenRequest would carry them inline.
	BankClient `json:",inline"`

	// allowedNamespaces says which namespaces' requests may use a ClusterBankConnection;
	// it admits none when absent. A BankConnection serves its own namespace only.
	// +optional
	AllowedNamespaces *NamespaceGate `json:"allowedNamespaces,omitempty"`

	// allowedScopes lists the scope values a request may ask for: every space-separated
	// value of its scope must be one of them, and a request without a scope is refused.
	// Absent, any scope is admitted.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern=`^[^ ]+$`
	AllowedScopes []string `json:"allowedScopes,omitempty"`

	// callBudget bounds the token calls of all the connection's requests together; a bank's
	// 429 or Retry-After pauses the whole connection. Defaults to 60 calls a minute.
	// +optional
	CallBudget *CallBudget `json:"callBudget,omitempty"`

	// grantSharing is PerRequest (the default: each request holds its own grant, so that
	// one namespace's grant can be revoked without the others') or Shared (the requests
	// with the same scope share one grant, renewed once for all of them).
	// +optional
	GrantSharing GrantSharing `json:"grantSharing,omitempty"`

	// privateKeyDelivery says whether a request may have the client certificate's private
	// key (tls.clientCertificateSecretRef's tls.key) copied into its output Secret, in its
	// own namespace, with certificateDelivery.privateKey: Allowed or Refused (the default).
	// A request that asks when it is Refused is Stalled with PrivateKeyDeliveryRefused and
	// receives no key. The certificate itself (public) may always be delivered.
	// +optional
	PrivateKeyDelivery PrivateKeyDelivery `json:"privateKeyDelivery,omitempty"`
}

// PrivateKeyDelivery says whether a connection's client key may leave its Secrets namespace.
// +kubebuilder:validation:Enum=Allowed;Refused
type PrivateKeyDelivery string

const (
	// PrivateKeyDeliveryAllowed: requests may copy the client certificate's key.
	PrivateKeyDeliveryAllowed PrivateKeyDelivery = "Allowed"
	// PrivateKeyDeliveryRefused: they may not; the default.
	PrivateKeyDeliveryRefused PrivateKeyDelivery = "Refused"
)

// BankConnectionStatus is what the operator observed of a connection and its requests.
type BankConnectionStatus struct {
	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: CredentialsReady says whether the referenced Secrets exist and hold what
	// the client authentication needs; Ready says whether the connection can serve tokens
	// (credentials ready, not paused).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// requests is how many BankTokenRequests use the connection.
	// +optional
	Requests int32 `json:"requests,omitempty"`

	// namespaces are the namespaces of those requests, sorted, at most 50.
	// +optional
	// +listType=atomic
	Namespaces []string `json:"namespaces,omitempty"`

	// refusedRequests is how many requests name the connection but are outside its gates.
	// +optional
	RefusedRequests int32 `json:"refusedRequests,omitempty"`

	// budget is the call budget's use.
	// +optional
	Budget *CallBudgetStatus `json:"budget,omitempty"`

	// lastFailure is the most recent failed token call of any of its requests.
	// +optional
	LastFailure *ConnectionFailure `json:"lastFailure,omitempty"`

	// endpoints are the endpoints its requests use and where each came from, and when the
	// issuer's metadata was read; present only when the connection names an issuer.
	// +optional
	Endpoints *EndpointsStatus `json:"endpoints,omitempty"`
}

// CallBudgetStatus is how much of the call budget is used, and a pause the bank asked for.
type CallBudgetStatus struct {
	// calls is how many token calls were made in the last interval.
	Calls int32 `json:"calls"`
	// limit is the budget's calls per interval.
	Limit int32 `json:"limit"`
	// interval is the budget's window.
	Interval metav1.Duration `json:"interval"`
	// pausedUntil is when a pause the bank asked for (429, Retry-After) ends; absent when
	// the connection is not paused.
	// +optional
	PausedUntil *metav1.Time `json:"pausedUntil,omitempty"`
}

// ConnectionFailure is a failed token call made through a connection.
type ConnectionFailure struct {
	// time is when the call failed.
	Time metav1.Time `json:"time"`
	// request is the namespace/name of the BankTokenRequest that made it.
	Request string `json:"request"`
	// reason is the failure's reason, as on the request's Ready condition.
	Reason string `json:"reason"`
	// message says what failed; it never holds a secret.
	// +optional
	Message string `json:"message,omitempty"`
}

// BankConnection is one client at a bank, used by the BankTokenRequests of its namespace
// that name it: they add only their scope and output Secret.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bconn,categories=banktoken
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider`
// +kubebuilder:printcolumn:name="Sharing",type=string,JSONPath=`.spec.grantSharing`
// +kubebuilder:printcolumn:name="Requests",type=integer,JSONPath=`.status.requests`
// +kubebuilder:printcolumn:name="Calls",type=integer,JSONPath=`.status.budget.calls`
// +kubebuilder:printcolumn:name="Budget",type=integer,JSONPath=`.status.budget.limit`,priority=1
// +kubebuilder:printcolumn:name="Paused-Until",type=string,JSONPath=`.status.budget.pausedUntil`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="!has(self.spec.allowedNamespaces)",message="a BankConnection serves the requests of its own namespace only: allowedNamespaces belongs on a ClusterBankConnection"
type BankConnection struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the bank client and the rules of its use.
	// +required
	Spec BankConnectionSpec `json:"spec"`

	// status says whether the connection can serve tokens and how it is used.
	// +optional
	Status BankConnectionStatus `json:"status,omitempty"`
}

// BankConnectionList is a list of BankConnections.
//
// +kubebuilder:object:root=true
type BankConnectionList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BankConnection `json:"items"`
}

// ClusterBankConnection is one client at a bank, used by the BankTokenRequests of the
// namespaces it admits. Its Secrets are read only from the operator's credentials namespace
// (--cluster-connection-namespace, the operator's own by default), so no tenant namespace
// holds the client's secret or key.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cbconn,categories=banktoken
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider`
// +kubebuilder:printcolumn:name="Sharing",type=string,JSONPath=`.spec.grantSharing`
// +kubebuilder:printcolumn:name="Requests",type=integer,JSONPath=`.status.requests`
// +kubebuilder:printcolumn:name="Calls",type=integer,JSONPath=`.status.budget.calls`
// +kubebuilder:printcolumn:name="Budget",type=integer,JSONPath=`.status.budget.limit`,priority=1
// +kubebuilder:printcolumn:name="Paused-Until",type=string,JSONPath=`.status.budget.pausedUntil`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterBankConnection struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the bank client and the rules of its use.
	// +required
	Spec BankConnectionSpec `json:"spec"`

	// status says whether the connection can serve tokens and how it is used.
	// +optional
	Status BankConnectionStatus `json:"status,omitempty"`
}

// ClusterBankConnectionList is a list of ClusterBankConnections.
//
// +kubebuilder:object:root=true
type ClusterBankConnectionList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterBankConnection `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BankConnection{}, &BankConnectionList{}, &ClusterBankConnection{}, &ClusterBankConnectionList{})
}
