package controller

import (
	"cmp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Signing keys: the client assertion key's Secret may hold the next key (next.key, and its
// kid under next.kid) beside the current one, and clientAssertion.nextKeyFrom says when it
// takes over. The time is a spec field, not an annotation of the Secret: the CRD checks it
// is a time, it is on the object whose status reports the switch, and a
// ClusterBankConnection's Secret lives where its tenants cannot see it. The next key can
// thus be registered at the bank or the trust framework's directory before anything is
// signed with it; at the set time the operator obtains a token signed with it (so that a
// key the bank does not hold shows at once, while the token held still works), and signs
// with it from then on. Only the keys' thumbprints reach status.

// signingKeys is what the key's Secret holds, by public halves only, and which key signs.
type signingKeys struct {
	// status describes the current key and the next one, if any.
	status []tokensv1alpha1.SigningKeyStatus
	// switchAt is when the next key takes over; zero without a next key or a time.
	switchAt time.Time
}

// switchDueFor: the key switch has come at now and the token held was signed for before it.
func (k signingKeys) switchDueFor(held *heldToken, now time.Time) bool {
	return k.switchPendingFor(held) && !now.Before(k.switchAt)
}

// switchPendingFor: the token held was obtained before the key switch, which is then owed
// a token of its own.
func (k signingKeys) switchPendingFor(held *heldToken) bool {
	return !k.switchAt.IsZero() && held != nil && held.IssuedAt.Before(k.switchAt)
}

// chooseSigningKey reads the current and next keys from the key Secret, chooses the one that
// signs at now, and describes both. A key that cannot be read is described with why; the
// token call reports it should it be chosen.
func chooseSigningKey(assertion *tokensv1alpha1.ClientAssertion, secret *corev1.Secret, now time.Time) (providers.AssertionKey, signingKeys) {
	privateKeyKey, keyIDKey := assertionKeyNames(assertion.PrivateKeySecretRef)
	rotating := assertion.NextKeyFrom != nil
	current := describeSigningKey(tokensv1alpha1.SigningKeyCurrent, providers.Secret(secret.Data[privateKeyKey]),
		cmp.Or(assertion.KeyID, trimmedValue(secret, keyIDKey)), rotating)
	chosen := providers.Secret(secret.Data[privateKeyKey])
	keys := signingKeys{status: []tokensv1alpha1.SigningKeyStatus{current}}
	next := providers.Secret(secret.Data[tokensv1alpha1.NextPrivateKeyKey])
	if !next.IsZero() {
		described := describeSigningKey(tokensv1alpha1.SigningKeyNext, next, trimmedValue(secret, tokensv1alpha1.NextKeyIDKey), true)
		if rotating {
			keys.switchAt = assertion.NextKeyFrom.Time
			described.From = &metav1.Time{Time: keys.switchAt.UTC()}
		}
		keys.status = append(keys.status, described)
		if rotating && !now.Before(keys.switchAt) {
			chosen = next
		}
	}
	inUse := 0
	if chosen != providers.Secret(secret.Data[privateKeyKey]) {
		inUse = 1
	}
	keys.status[inUse].InUse = true
	return providers.AssertionKey{PrivateKey: chosen, KeyID: keys.status[inUse].KeyID,
		Algorithm: assertion.SigningAlgorithm, Audience: assertion.Audience}, keys
}

// describeSigningKey is a key's status: its RFC 7638 thumbprint, and the kid sent with it:
// keyID when given, otherwise the thumbprint if thumbprintByDefault.
func describeSigningKey(slot tokensv1alpha1.SigningKeySlot, keyPEM providers.Secret, keyID string, thumbprintByDefault bool) tokensv1alpha1.SigningKeyStatus {
	status := tokensv1alpha1.SigningKeyStatus{Slot: slot, KeyID: keyID}
	thumbprint, err := providers.KeyThumbprint(keyPEM)
	if err != nil {
		status.Message = err.Message // names the problem, never the key
		return status
	}
	status.Thumbprint = thumbprint
	if status.KeyID == "" && thumbprintByDefault {
		status.KeyID = thumbprint
	}
	return status
}

// trimmedValue is a Secret's value under key without surrounding space: a kid written with
// kubectl --from-file keeps the file's newline.
func trimmedValue(secret *corev1.Secret, key string) string {
	return strings.TrimSpace(string(secret.Data[key]))
}
