package controller

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"k8s.io/apimachinery/pkg/types"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// credentialKeyNames are the keys read from the credentials Secret.
type credentialKeyNames struct {
	clientID, clientSecret, username, password string
	passwordGrant                              bool
	// withoutSecret: the client proves itself with a key or a certificate, not a secret.
	withoutSecret bool
}

func credentialKeys(btr *tokensv1alpha1.BankTokenRequest) credentialKeyNames {
	ref := btr.Spec.CredentialsSecretRef
	return credentialKeyNames{
		clientID:      cmp.Or(ref.ClientIDKey, tokensv1alpha1.DefaultClientIDKey),
		clientSecret:  cmp.Or(ref.ClientSecretKey, tokensv1alpha1.DefaultClientSecretKey),
		username:      cmp.Or(ref.UsernameKey, tokensv1alpha1.DefaultUsernameKey),
		password:      cmp.Or(ref.PasswordKey, tokensv1alpha1.DefaultPasswordKey),
		passwordGrant: primaryGrant(&btr.Spec) == providers.GrantPassword,
		withoutSecret: !clientAuthentication(&btr.Spec).SendsClientSecret(),
	}
}

func (k credentialKeyNames) required() []string {
	keys := []string{k.clientID}
	if !k.withoutSecret {
		keys = append(keys, k.clientSecret)
	}
	if k.passwordGrant {
		keys = append(keys, k.username, k.password)
	}
	return keys
}

// clientAuthentication is how the client proves who it is: the spec's choice or the provider's default.
func clientAuthentication(spec *tokensv1alpha1.BankTokenRequestSpec) providers.ClientAuthentication {
	return specOrDefault(providers.ClientAuthentication(spec.ClientAuthentication), spec.Provider,
		func(p providers.Preset) providers.ClientAuthentication { return p.DefaultClientAuthentication }, providers.ClientAuthBasic)
}

// assertionKeyNames are the keys read from the client assertion key's Secret.
func assertionKeyNames(ref tokensv1alpha1.PrivateKeySecretReference) (privateKey, keyID string) {
	return cmp.Or(ref.Key, tokensv1alpha1.DefaultPrivateKeyKey), cmp.Or(ref.KeyIDKey, tokensv1alpha1.DefaultKeyIDKey)
}

// primaryGrant is the grant that obtains a new token without a refresh token.
func primaryGrant(spec *tokensv1alpha1.BankTokenRequestSpec) providers.GrantType {
	return specOrDefault(providers.GrantType(spec.GrantType), spec.Provider,
		func(p providers.Preset) providers.GrantType { return p.DefaultGrant }, providers.GrantClientCredentials)
}

// specOrDefault is the spec's value; unset, the provider's default; for an unknown
// provider, fallback.
func specOrDefault[T ~string](value T, provider tokensv1alpha1.Provider, presetDefault func(providers.Preset) T, fallback T) T {
	if value != "" {
		return value
	}
	if preset, ok := providers.PresetFor(providers.Name(provider)); ok {
		return presetDefault(preset)
	}
	return fallback
}

// refreshable says whether the provider's endpoint takes the refresh_token grant: a refresh
// token is stored only where it can be used (RAKBANK's partner endpoint cannot).
func refreshable(spec *tokensv1alpha1.BankTokenRequestSpec) bool {
	preset, ok := presetFor(spec)
	return !ok || preset.SupportsRefresh
}

// presetFor is the preset of the spec's provider; false for a provider the operator does
// not know (the CRD's enum makes that an old or hand-made object).
func presetFor(spec *tokensv1alpha1.BankTokenRequestSpec) (providers.Preset, bool) {
	return providers.PresetFor(providers.Name(spec.Provider))
}

func objectVersion(kind, name string, uid types.UID, resourceVersion string) string {
	return kind + "/" + name + "/" + string(uid) + "/" + resourceVersion
}

// requestHash fingerprints what shapes the token request. Renewal timing, the output
// Secret's name and template, and suspend are left out: changing them needs no new token.
func requestHash(spec *tokensv1alpha1.BankTokenRequestSpec, versions []string) string {
	fingerprint := struct {
		Provider             tokensv1alpha1.Provider
		Endpoint             string
		Scope                string
		GrantType            tokensv1alpha1.GrantType
		ClientAuthentication tokensv1alpha1.ClientAuthentication
		Headers              []tokensv1alpha1.HTTPHeader
		Metadata             map[string]string
		Credentials          tokensv1alpha1.CredentialsSecretReference
		TLS                  *tokensv1alpha1.TLSConfig
		Versions             []string
		// Omitted when unset, so that the hash of a request without it is what it always was.
		ClientAssertion *tokensv1alpha1.ClientAssertion `json:",omitempty"`
		// Omitted when empty, likewise: a refresh token is bound to the parameters it was
		// issued with (an audience or resource changes what the token is for).
		TokenRequestParameters []tokensv1alpha1.TokenRequestParameter `json:",omitempty"`
		// Omitted when unset, like ClientAssertion. With an issuer, Endpoint and
		// ClientAssertion are the ones resolved from its metadata (see issuer.go).
		Issuer string `json:",omitempty"`
	}{spec.Provider, spec.Endpoint, spec.Scope, spec.GrantType, spec.ClientAuthentication,
		spec.Headers, spec.Metadata, spec.CredentialsSecretRef, spec.TLS, versions, spec.ClientAssertion,
		spec.TokenRequestParameters, spec.Issuer}
	raw, _ := json.Marshal(fingerprint) // plain structs and maps: cannot fail
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}
