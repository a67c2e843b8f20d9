package v1alpha1

// Condition types, in kstatus style: Ready is always present once reconciled; Reconciling
// and Stalled are present only while true. They live in the API package so that users,
// tests and tools (Argo CD health, kubectl plugins) can read them without the controller.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
	// ConditionCredentialsReady, on a BankConnection or ClusterBankConnection: the Secrets it
	// names exist, are opted in where required, and hold what its client authentication needs.
	ConditionCredentialsReady = "CredentialsReady"
)

// Reasons a user sees on the Ready condition. Each says what happened and, for a failure,
// points at what to fix. A failed token call's reason (InvalidCredentials, RateLimited,
// EndpointUnreachable, ...) is the provider's, used as it is.
const (
	// ReasonTokenIssued: the output Secret holds a valid token.
	ReasonTokenIssued = "TokenIssued"
	// ReasonRefreshFailing: the current token still works, but renewing it is failing.
	ReasonRefreshFailing = "RefreshFailing"
	// ReasonTokenExpired: the token expired and no new one could be obtained.
	ReasonTokenExpired = "TokenExpired"
	// ReasonLifetimeBelowMinRenewalInterval: the bank's tokens live less than the operator's
	// --min-renewal-interval; the token expired and is renewed when that interval has passed.
	ReasonLifetimeBelowMinRenewalInterval = "LifetimeBelowMinRenewalInterval"
	// ReasonSuspended: spec.suspend is true; nothing is called.
	ReasonSuspended = "Suspended"
	// ReasonCredentialsSecretNotFound: the credentials Secret does not exist.
	ReasonCredentialsSecretNotFound = "CredentialsSecretNotFound"
	// ReasonCredentialsKeyMissing: the credentials Secret lacks a key the grant needs.
	ReasonCredentialsKeyMissing = "CredentialsKeyMissing"
	// ReasonTLSSecretNotFound: a CA bundle or client certificate object does not exist.
	ReasonTLSSecretNotFound = "TLSSecretNotFound"
	// ReasonKeySecretNotFound: the Secret of the key that signs client assertions does not exist.
	ReasonKeySecretNotFound = "KeySecretNotFound"
	// ReasonInsecureEndpoint: the endpoint is http and the operator was not started to allow it.
	ReasonInsecureEndpoint = "InsecureEndpoint"
	// ReasonSecretConflict: the output or refresh-token Secret exists and belongs to something else.
	ReasonSecretConflict = "SecretConflict"
	// ReasonEndpointRefused: the endpoint resolves to an address, or names a host, that the
	// operator may not connect to (link-local, cloud metadata, the cluster's apiserver,
	// loopback, or outside the platform team's rules). The message names the rule.
	ReasonEndpointRefused = "EndpointRefused"
	// ReasonCredentialsNotOptedIn: a referenced Secret does not carry the CredentialsLabel,
	// which the operator asks for unless started with --credentials-label-required=false.
	ReasonCredentialsNotOptedIn = "CredentialsNotOptedIn"
	// ReasonCredentialsSecretRefused: a referenced Secret whose values would go to the bank
	// is of a type the operator never sends (a service account token).
	ReasonCredentialsSecretRefused = "CredentialsSecretRefused"
	// ReasonInvalidReference: a reference names an object no Kubernetes name can match (a
	// '/', '..', upper case): the CRD refuses it now, but older objects may hold one.
	ReasonInvalidReference = "InvalidReference"
	// ReasonInvalidSecretTemplate: spec.secretTemplate holds a label or annotation that the
	// apiserver would refuse on the output Secret, or one under tokens.banktoken.io/.
	ReasonInvalidSecretTemplate = "InvalidSecretTemplate"
	// ReasonSecretNameConflict: spec.secretName is the refresh-token Secret's name.
	ReasonSecretNameConflict = "SecretNameConflict"
	// ReasonOutputSecretRejected: a token was obtained, but the apiserver refused the output
	// or refresh-token Secret as invalid; no call is made again until the spec or a
	// referenced object changes.
	ReasonOutputSecretRejected = "OutputSecretRejected"
	// ReasonInternalError: the operator could not read or write Kubernetes objects. When a
	// token was obtained and could not be written, the next attempt follows the failure
	// backoff, as a failed call does.
	ReasonInternalError = "InternalError"

	// Reasons a request that names a connection (spec.connectionRef) is refused before any
	// call. Each is on Stalled and Ready, with a message naming the connection and the rule;
	// a request refused after it held a token no longer holds one (its output Secret is
	// emptied and its grants revoked where the bank allows).

	// ReasonConnectionNotFound: the BankConnection (in the request's own namespace) or the
	// ClusterBankConnection named does not exist.
	ReasonConnectionNotFound = "ConnectionNotFound"
	// ReasonNamespaceNotAdmitted: the ClusterBankConnection's allowedNamespaces does not
	// admit the request's namespace, by name or by the selector on the Namespace's labels.
	ReasonNamespaceNotAdmitted = "NamespaceNotAdmitted"
	// ReasonScopeNotAdmitted: the request's scope holds a value the connection's
	// allowedScopes does not list, or is empty while allowedScopes is set.
	ReasonScopeNotAdmitted = "ScopeNotAdmitted"
	// ReasonInvalidScope: the request's scope breaks its connection's provider's rules (a
	// scope required, a maximum length), which the CRD checks only on inline requests.
	ReasonInvalidScope = "InvalidScope"
	// ReasonPrivateKeyDeliveryRefused: the request asks for the client certificate's private
	// key (certificateDelivery.privateKey) and its connection's privateKeyDelivery is not
	// Allowed: the key stays in the connection's Secrets namespace.
	ReasonPrivateKeyDeliveryRefused = "PrivateKeyDeliveryRefused"
	// ReasonNoClientCertificate: the request asks for the client certificate
	// (certificateDelivery) and its client has none (tls.clientCertificateSecretRef).
	ReasonNoClientCertificate = "NoClientCertificate"
	// ReasonClusterConnectionsNotServed: the operator does not serve ClusterBankConnections:
	// confined to namespaces (--watch-namespaces), it cannot watch cluster-scoped objects
	// unless started with --cluster-connection-namespace.
	ReasonClusterConnectionsNotServed = "ClusterConnectionsNotServed"

	// Reasons a request that names a connection waits for its connection's call budget
	// before a token call, on Reconciling (and on Ready while no token was ever issued). The
	// token held stays in the output Secret and Ready stays True while it is valid; no failed
	// attempt is counted.

	// ReasonWaitingForConnectionBudget: the connection's calls in the last interval reached
	// its spec.callBudget, or the room left is kept for more urgent requests.
	ReasonWaitingForConnectionBudget = "WaitingForConnectionBudget"
	// ReasonConnectionPaused: the bank answered 429 or Retry-After to a request of the
	// connection, and every call through it waits until the time the bank gave. Also the
	// connection's own Ready reason while the pause lasts.
	ReasonConnectionPaused = "ConnectionPaused"

	// Reasons on a connection's conditions; a credentials problem has the reason a request
	// would report (CredentialsSecretNotFound, CredentialsKeyMissing, ...).

	// ReasonCredentialsFound: CredentialsReady is True.
	ReasonCredentialsFound = "CredentialsFound"
	// ReasonConnectionReady: Ready is True: credentials ready, not paused.
	ReasonConnectionReady = "Ready"

	// Reasons of a request that reads a shared grant (its connection's grantSharing is
	// Shared): it makes no call of its own, and its output Secret holds the token of the
	// BankTokenRequest status.sharedGrant names.

	// ReasonWaitingForSharedGrant: the shared grant's holder has no token yet (just created,
	// or obtaining its first); a token the request held before stays until it has.
	ReasonWaitingForSharedGrant = "WaitingForSharedGrant"
	// ReasonSharedGrantFailing: the shared grant's holder cannot obtain a token; the message
	// carries its reason. Its own status says more.
	ReasonSharedGrantFailing = "SharedGrantFailing"
	// ReasonSharedGrantConflict: a BankTokenRequest of the holder's name exists and is not the
	// holder of this connection and scope.
	ReasonSharedGrantConflict = "SharedGrantConflict"
)
