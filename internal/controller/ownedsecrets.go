package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/sharding"
)

// The refresh-token Secret's name is the resource's with a suffix, within the apiserver's
// limit on names.
const (
	refreshSecretSuffix = "-refresh-token"
	maxSecretNameLength = 253
)

// The labels on the Secrets the operator owns are in tokensv1alpha1 (ManagedByLabel,
// RequestLabel, SecretRoleLabel), where other tools read them.

// roleDescriptions name each owned Secret in messages.
var roleDescriptions = map[string]string{
	tokensv1alpha1.SecretRoleToken:        "output",
	tokensv1alpha1.SecretRoleRefreshToken: "refresh-token",
}

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

// ownedSecret is the desired state of a Secret the operator owns.
type ownedSecret struct {
	// existing is the Secret as gathered, nil when it does not exist yet. It is not modified.
	existing *corev1.Secret
	name     string
	role     string
	// labels and annotations are applied under the operator's own labels.
	labels, annotations map[string]string
	data                map[string][]byte
}

// maxOwnedSecretWrites bounds the attempts of one write: a conflict (someone edited the
// Secret since it was read) or a cache that lagged behind a create is retried with a
// fresh read, inside the same reconcile, so that a good token is not thrown away.
const maxOwnedSecretWrites = 3

// writeOwnedSecret creates or updates an owned Secret, and writes nothing when it already
// holds what is wanted. It returns the Secret as written. Every write is remembered so that
// its watch event is not mistaken for someone else's change.
func (r *BankTokenRequestReconciler) writeOwnedSecret(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, want ownedSecret) (*corev1.Secret, error) {
	base := want.existing
	defer r.ownWrites.begin(types.NamespacedName{Namespace: btr.Namespace, Name: want.name})()
	var err error
	for range maxOwnedSecretWrites {
		secret := desiredSecret(btr, base, want, r.Shard)
		if err = controllerutil.SetControllerReference(btr, secret, r.Client.Scheme()); err != nil {
			return nil, err
		}
		switch {
		case base == nil:
			err = r.Client.Create(ctx, secret)
		case sameSecret(base, secret):
			return base, nil
		default:
			err = r.Client.Update(ctx, secret)
		}
		if err == nil {
			r.ownWrites.record(secret)
			return secret, nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && !(base != nil && apierrors.IsNotFound(err)) {
			break
		}
		if base, err = r.getSecret(ctx, btr.Namespace, want.name); err != nil {
			break
		}
		if base != nil && !isControlledBy(base, btr) {
			return nil, fmt.Errorf("%s Secret %s/%s was taken over by something else", roleDescriptions[want.role], btr.Namespace, want.name)
		}
	}
	return nil, fmt.Errorf("writing %s Secret %s/%s: %w", roleDescriptions[want.role], btr.Namespace, want.name, err)
}

// desiredSecret is base (not modified) with what is wanted applied: the caller's labels
// and annotations under the operator's own labels, and the sharder's labels kept (see
// shardOwnedSecret).
func desiredSecret(btr *tokensv1alpha1.BankTokenRequest, base *corev1.Secret, want ownedSecret, shard sharding.Shard) *corev1.Secret {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: btr.Namespace, Name: want.name}}
	if base != nil {
		secret = base.DeepCopy()
	}
	secret.Labels = maps.Clone(want.labels)
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	secret.Labels[tokensv1alpha1.ManagedByLabel] = tokensv1alpha1.ManagedByValue
	secret.Labels[tokensv1alpha1.RequestLabel] = truncateLabelValue(btr.Name)
	secret.Labels[tokensv1alpha1.SecretRoleLabel] = want.role
	shardOwnedSecret(secret, base, shard)
	secret.Annotations = want.annotations
	secret.Type = corev1.SecretTypeOpaque
	secret.Data = want.data
	return secret
}

func sameSecret(a, b *corev1.Secret) bool {
	return a.Type == b.Type && equality.Semantic.DeepEqual(a.Labels, b.Labels) &&
		equality.Semantic.DeepEqual(a.Annotations, b.Annotations) && equality.Semantic.DeepEqual(a.Data, b.Data) &&
		equality.Semantic.DeepEqual(a.OwnerReferences, b.OwnerReferences)
}

// writeOutputSecret publishes data for workloads, with the secretTemplate's labels and
// annotations under the operator's.
func (r *BankTokenRequestReconciler) writeOutputSecret(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, data map[string][]byte, operatorAnnotations map[string]string) error {
	labels, annotations := map[string]string{}, map[string]string{}
	if t := btr.Spec.SecretTemplate; t != nil {
		maps.Copy(labels, t.LabelMap())
		maps.Copy(annotations, t.AnnotationMap())
	}
	maps.Copy(annotations, operatorAnnotations)
	_, err := r.writeOwnedSecret(ctx, btr, ownedSecret{existing: g.OutputSecret, name: outputSecretName(btr),
		role: tokensv1alpha1.SecretRoleToken, labels: labels, annotations: annotations, data: data})
	return err
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
