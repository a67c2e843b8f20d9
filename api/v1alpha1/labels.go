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
