package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Annotations the operator puts on the output Secret to recognise its own token.
const (
	annotationIssuedAt  = "tokens.banktoken.io/issued-at"
	annotationInputHash = "tokens.banktoken.io/request-hash"
	annotationChecksum  = "tokens.banktoken.io/checksum"
	// annotationRefreshRequestedAt records the forced refresh (the resource's annotation
	// value) the token answered: read fresh with the Secret, it keeps a reconcile that sees
	// a status older than its own last write from acting on the same request twice.
	annotationRefreshRequestedAt = tokensv1alpha1.RefreshRequestedAtAnnotation
)

// heldToken is what the output Secret says the workload holds.
type heldToken struct {
	AccessToken providers.Secret
	TokenType   string
	Scope       string
	IssuedAt    time.Time
	ExpiresAt   time.Time
	// RequestHash fingerprints the inputs the token was issued for.
	RequestHash string
	// RefreshRequestedAt is the forced refresh the token answered, "" when none.
	RefreshRequestedAt string
}

func (h *heldToken) validAt(now time.Time) bool { return h != nil && now.Before(h.ExpiresAt) }

// readHeldToken returns the token in an output Secret, or why there is none usable:
// "" when intact, otherwise a short description of what is wrong.
func readHeldToken(secret *corev1.Secret) (*heldToken, string) {
	if secret == nil {
		return nil, "the output Secret does not exist"
	}
	if secret.Annotations[annotationChecksum] != dataChecksum(secret.Data) {
		return nil, "the output Secret was altered"
	}
	expiresAt, err := time.Parse(time.RFC3339, string(secret.Data[tokensv1alpha1.SecretKeyExpiresAt]))
	if err != nil {
		return nil, "the output Secret has no valid expires_at"
	}
	issuedAt, err := time.Parse(time.RFC3339, secret.Annotations[annotationIssuedAt])
	if err != nil {
		return nil, "the output Secret has no valid issued-at annotation"
	}
	return &heldToken{
		AccessToken:        providers.Secret(secret.Data[tokensv1alpha1.SecretKeyAccessToken]),
		TokenType:          string(secret.Data[tokensv1alpha1.SecretKeyTokenType]),
		Scope:              string(secret.Data[tokensv1alpha1.SecretKeyScope]),
		IssuedAt:           issuedAt,
		ExpiresAt:          expiresAt,
		RequestHash:        secret.Annotations[annotationInputHash],
		RefreshRequestedAt: secret.Annotations[annotationRefreshRequestedAt],
	}, ""
}

// outputSecretData is what workloads read. Times are whole seconds in RFC 3339.
func outputSecretData(tok *providers.Token) map[string][]byte {
	tokenType := tok.TokenType
	if tokenType == "" {
		tokenType = "Bearer"
	}
	data := map[string][]byte{
		tokensv1alpha1.SecretKeyAccessToken:   []byte(tok.AccessToken.Reveal()),
		tokensv1alpha1.SecretKeyTokenType:     []byte(tokenType),
		tokensv1alpha1.SecretKeyExpiresAt:     []byte(tok.ExpiresAt.UTC().Truncate(time.Second).Format(time.RFC3339)),
		tokensv1alpha1.SecretKeyScope:         []byte(tok.Scope),
		tokensv1alpha1.SecretKeyAuthorization: []byte(tokenType + " " + tok.AccessToken.Reveal()),
	}
	// A certificate-bound token works only with the client certificate: say so (RFC 8705 §3).
	if tok.CertificateThumbprint != "" {
		data[tokensv1alpha1.SecretKeyCertificateBound] = []byte("true")
		data[tokensv1alpha1.SecretKeyCertificateThumbprint] = []byte(tok.CertificateThumbprint)
	}
	return data
}

// tokenAnnotations are the operator's own annotations of an output Secret, without the
// template's, so that a template change can drop what it no longer sets.
func tokenAnnotations(secret *corev1.Secret) map[string]string {
	keep := map[string]string{}
	for _, k := range []string{annotationIssuedAt, annotationInputHash, annotationChecksum, annotationRefreshCompleted, annotationRefreshRequestedAt} {
		if v, ok := secret.Annotations[k]; ok {
			keep[k] = v
		}
	}
	return keep
}

// dataChecksum detects a Secret edited by someone else. A SHA-256 of data holding a bank
// token reveals nothing usable.
func dataChecksum(data map[string][]byte) string {
	if len(data) == 0 {
		return ""
	}
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(data)) {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(data[k])
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// formatTime renders times the way status and Secrets show them.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
