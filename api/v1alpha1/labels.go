package v1alpha1

// Labels a user sets on the objects a BankTokenRequest references.
const (
	// CredentialsLabel, set to "true" on a Secret, lets the operator read it as credentials,
	// a client assertion key or a client certificate. The operator asks for it unless
	// started with --credentials-label-required=false: otherwise anyone who may create a
	// BankTokenRequest could send any Secret of their namespace to an endpoint of their
	// choosing.
	CredentialsLabel = "tokens.banktoken.io/credentials"
	// CredentialsLabelValue is the value CredentialsLabel must have.
	CredentialsLabelValue = "true"
)

// Labels the operator puts on the Secrets it owns: the output Secret and the Secret that
// holds the refresh token. Tools find a resource's Secrets by RequestLabel and tell them
// apart by SecretRoleLabel.
const (
	// ManagedByLabel is the well-known label naming what manages an object.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	// ManagedByValue is ManagedByLabel's value on the operator's Secrets.
	ManagedByValue = "bank-token-operator"
	// RequestLabel holds the name of the BankTokenRequest a Secret belongs to, cut to 63
	// characters: the owner reference, not the label, is what ties the two.
	RequestLabel = "tokens.banktoken.io/request"
	// SecretRoleLabel says which of a BankTokenRequest's Secrets this is: SecretRoleToken or
	// SecretRoleRefreshToken. The manager caches only the Secrets that carry it.
	SecretRoleLabel = "tokens.banktoken.io/secret-role"
	// SecretRoleToken marks the output Secret, the one workloads mount.
	SecretRoleToken = "token"
	// SecretRoleRefreshToken marks the Secret that holds the refresh token, which workloads
	// have no reason to mount.
	SecretRoleRefreshToken = "refresh-token"
)

// Labels the operator puts on the BankTokenRequests it creates to hold a shared grant (a
// connection with grantSharing Shared): one per connection and scope, in the connection's
// Secrets namespace.
const (
	// SharedGrantLabel, set to SharedGrantLabelValue, marks a shared grant's holder. The
	// operator takes it for one only in the connection's Secrets namespace (for a
	// ClusterBankConnection, the operator's, where tenants create nothing), so a tenant's
	// own request gains nothing by carrying it.
	SharedGrantLabel = "tokens.banktoken.io/shared-grant"
	// SharedGrantLabelValue is the value SharedGrantLabel has on a holder.
	SharedGrantLabelValue = "true"
	// ConnectionLabel on a holder names its connection as "<kind>.<name>", cut and hashed
	// when longer than a label value may be.
	ConnectionLabel = "tokens.banktoken.io/connection"
)
