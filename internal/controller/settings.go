package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Settings are the operator's choices that shape what a reconcile decides: one value, built
// once from the manager's flags. verify.go fingerprints the whole value into status, so a
// setting added here makes a restart under another value re-verify every resource without
// anyone remembering to list it.
type Settings struct {
	// AllowInsecureEndpoints admits http:// endpoints; for tests and local sandboxes only.
	AllowInsecureEndpoints bool
	// CredentialsLabelRequired reads only referenced Secrets that carry
	// tokensv1alpha1.CredentialsLabel (see optedIn).
	CredentialsLabelRequired bool
	// DefaultTokenLifetime applies when the bank states no lifetime and the token is no JWT.
	DefaultTokenLifetime time.Duration
	// SecretPropagationDelay is how late a workload may read the output Secret (the kubelet
	// syncs a mounted Secret about a minute after a change): the token a renewal replaces
	// stays usable at least this long, and renewal leaves it before expiry when the
	// lifetime allows.
	SecretPropagationDelay time.Duration
	// MinRenewalInterval is the least time between two renewals of a token, whatever its
	// lifetime (a bank answering expires_in: 1 would otherwise cost three apiserver writes a
	// second); the status says so when a token is expired in between.
	MinRenewalInterval time.Duration
	// IssueEvents emits TokenIssued and TokenRefreshed events for routine issues. Off by
	// default: status and metrics record every issue, and an event is a third apiserver
	// write per token. Failures, recoveries and rejected refresh tokens always get one.
	IssueEvents bool
	// TokenCallsPerNamespace caps the token calls one namespace may have under way, so that
	// its hung endpoints cannot take every worker (see package tokencalls). Zero: a share of
	// the workers, tokencalls.DefaultPerNamespace, set by SetupWithManager.
	TokenCallsPerNamespace int
	// TokenCallReserve is how many workers only a namespace with no token call under way may
	// take, so that many namespaces' hung endpoints cannot hold every worker (see package
	// tokencalls). Negative: tokencalls.DefaultReserve, set by SetupWithManager; zero: none.
	TokenCallReserve int
	// ClusterConnectionNamespace is the one namespace the Secrets and ConfigMaps that
	// ClusterBankConnections name are read from (the operator's own, by default), so that no
	// tenant namespace holds a shared client's credentials. Empty: ClusterBankConnections are
	// not served, and neither they nor Namespaces are watched (an operator confined to some
	// namespaces may not list cluster-scoped objects).
	ClusterConnectionNamespace string
	// SharedGrantGrace is how long a shared grant's holder outlives its last reader before
	// it is deleted and its grants revoked, so that a reader deleted and created again
	// soon after does not cost a new grant. Never less than SecretPropagationDelay: the
	// last reader's workloads may still use the shared token that long (see sharedgrantgc.go).
	SharedGrantGrace time.Duration
	// SharedGrantCopyAllowance is how long a shared grant's readers may take to copy a new
	// token into their output Secrets: a holder's propagation delay is SecretPropagationDelay
	// plus this, for its readers' workloads read their copies, not its Secret.
	SharedGrantCopyAllowance time.Duration
}

// DefaultClusterConnectionNamespace is the namespace the shipped manifests install the
// operator in: the cluster connection namespace when the operator cannot tell its own.
const DefaultClusterConnectionNamespace = "bank-token-operator-system"

// DefaultSharedGrantGrace is SharedGrantGrace when the flag does not say otherwise.
const DefaultSharedGrantGrace = 5 * time.Minute

// DefaultSharedGrantCopyAllowance is SharedGrantCopyAllowance when the flag does not say
// otherwise: a reader's copy is about five apiserver calls, so at the default 200 queries a
// second some thousand readers of one grant copy a renewal within it.
const DefaultSharedGrantCopyAllowance = 30 * time.Second

// DefaultSettings are the manager flags' defaults.
func DefaultSettings() Settings {
	return Settings{
		CredentialsLabelRequired: true,
		DefaultTokenLifetime:     time.Hour,
		SecretPropagationDelay:   DefaultSecretPropagationDelay,
		MinRenewalInterval:       DefaultMinRenewalInterval,
		TokenCallReserve:         -1,
		// cmd prefers the namespace the operator runs in (POD_NAMESPACE).
		ClusterConnectionNamespace: DefaultClusterConnectionNamespace,
		SharedGrantGrace:           DefaultSharedGrantGrace,
		SharedGrantCopyAllowance:   DefaultSharedGrantCopyAllowance,
	}
}

// fingerprint identifies the whole value: every field, present and future.
func (s Settings) fingerprint() string {
	raw, _ := json.Marshal(s) // bools, ints and durations: cannot fail
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}
