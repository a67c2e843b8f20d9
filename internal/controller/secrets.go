package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Labels and annotations the operator puts on the Secrets it owns.
const (
	labelManagedBy      = "app.kubernetes.io/managed-by"
	managedByValue      = "bank-token-operator"
	labelRequest        = "tokens.banktoken.io/request"
	labelSecretRole     = "tokens.banktoken.io/secret-role"
	roleToken           = "token"
	roleRefreshToken    = "refresh-token"
	annotationIssuedAt  = "tokens.banktoken.io/issued-at"
	annotationInputHash = "tokens.banktoken.io/request-hash"
	annotationChecksum  = "tokens.banktoken.io/checksum"
	refreshTokenKey     = "refresh_token"
	refreshSecretSuffix = "-refresh-token"
	maxSecretNameLength = 253
)

// outputSecretName is spec.secretName, or the resource's own name.
func outputSecretName(btr *tokensv1alpha1.BankTokenRequest) string {
	if btr.Spec.SecretName != "" {
		return btr.Spec.SecretName
	}
	return btr.Name
}

// refreshSecretName is where the refresh token lives: a Secret workloads have no reason to
// mount, named after the resource, shortened with a hash when the name would be too long.
func refreshSecretName(btr *tokensv1alpha1.BankTokenRequest) string {
	name := btr.Name + refreshSecretSuffix
	if len(name) <= maxSecretNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(btr.Name))
	keep := maxSecretNameLength - len(refreshSecretSuffix) - 9
	return strings.TrimRight(btr.Name[:keep], "-.") + "-" + hex.EncodeToString(sum[:4]) + refreshSecretSuffix
}

// heldToken is what the output Secret says the workload holds.
type heldToken struct {
	AccessToken providers.Secret
	TokenType   string
	Scope       string
	IssuedAt    time.Time
	ExpiresAt   time.Time
	// RequestHash fingerprints the inputs the token was issued for.
	RequestHash string
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
		AccessToken: providers.Secret(secret.Data[tokensv1alpha1.SecretKeyAccessToken]),
		TokenType:   string(secret.Data[tokensv1alpha1.SecretKeyTokenType]),
		Scope:       string(secret.Data[tokensv1alpha1.SecretKeyScope]),
		IssuedAt:    issuedAt,
		ExpiresAt:   expiresAt,
		RequestHash: secret.Annotations[annotationInputHash],
	}, ""
}

// outputSecretData is what workloads read. Times are whole seconds in RFC 3339.
func outputSecretData(tok *providers.Token) map[string][]byte {
	tokenType := tok.TokenType
	if tokenType == "" {
		tokenType = "Bearer"
	}
	return map[string][]byte{
		tokensv1alpha1.SecretKeyAccessToken:   []byte(tok.AccessToken.Reveal()),
		tokensv1alpha1.SecretKeyTokenType:     []byte(tokenType),
		tokensv1alpha1.SecretKeyExpiresAt:     []byte(tok.ExpiresAt.UTC().Truncate(time.Second).Format(time.RFC3339)),
		tokensv1alpha1.SecretKeyScope:         []byte(tok.Scope),
		tokensv1alpha1.SecretKeyAuthorization: []byte(tokenType + " " + tok.AccessToken.Reveal()),
	}
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

// ownedSecretMeta applies the operator's labels and annotations on top of the template's,
// so a template cannot hide that the operator owns the Secret.
func ownedSecretMeta(btr *tokensv1alpha1.BankTokenRequest, role string, labels, annotations map[string]string) (map[string]string, map[string]string) {
	outLabels := map[string]string{}
	outAnnotations := map[string]string{}
	if role == roleToken && btr.Spec.SecretTemplate != nil {
		maps.Copy(outLabels, btr.Spec.SecretTemplate.Labels)
		maps.Copy(outAnnotations, btr.Spec.SecretTemplate.Annotations)
	}
	maps.Copy(outLabels, labels)
	outLabels[labelManagedBy] = managedByValue
	outLabels[labelRequest] = truncateLabelValue(btr.Name)
	outLabels[labelSecretRole] = role
	maps.Copy(outAnnotations, annotations)
	return outLabels, outAnnotations
}

// truncateLabelValue keeps label values within 63 characters; the owner reference, not the
// label, is what ties a Secret to its resource.
func truncateLabelValue(v string) string {
	if len(v) <= 63 {
		return v
	}
	return strings.TrimRight(v[:63], "-_.")
}

// isControlledBy reports whether the Secret's controller is this resource.
func isControlledBy(secret *corev1.Secret, btr *tokensv1alpha1.BankTokenRequest) bool {
	ref := metav1.GetControllerOf(secret)
	return ref != nil && ref.UID == btr.UID
}

// formatTime renders times the way status and Secrets show them.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
