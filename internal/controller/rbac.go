package controller

// The manager's permissions, exactly what the reconciler uses. Secrets are read and
// watched (metadata only) to follow credentials, and written only where the operator owns
// them (output and refresh-token Secrets); nothing is ever deleted by hand, garbage
// collection removes owned Secrets with their BankTokenRequest. The apiserver's own Service
// and EndpointSlice are read by name, so that the endpoint guard knows its addresses.
// BankConnections and ClusterBankConnections are read, and only their status written (by
// the connection status reconciler); Namespaces are read for the labels a
// ClusterBankConnection's selector judges, and cached as metadata. BankTokenRequests are
// created and deleted only as the holders of shared grants, beside their connection's
// Secrets (see sharedgrants.go).

// +kubebuilder:rbac:groups=tokens.banktoken.io,resources=banktokenrequests,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=tokens.banktoken.io,resources=banktokenrequests/finalizers,verbs=update
// +kubebuilder:rbac:groups=tokens.banktoken.io,resources=banktokenrequests/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get,resourceNames=kubernetes
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get,resourceNames=kubernetes
// +kubebuilder:rbac:groups=tokens.banktoken.io,resources=bankconnections;clusterbankconnections,verbs=get;list;watch
// +kubebuilder:rbac:groups=tokens.banktoken.io,resources=bankconnections/status;clusterbankconnections/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
