package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Verifying from metadata. Most reconciles find nothing to do: a resync, the initial list
// after a restart, an unrelated event. Reading the output, refresh-token and credentials
// Secrets for each of them was most of what a restart cost (15,000 GETs for 5,000
// resources, and a minute before a token falling due was reached). So status records the
// versions it was derived from (status.observed, written with the status write that follows
// every Secret write), and the manager already holds the current versions in its metadata
// caches: the owned Secrets' in the manager's cache, the referenced objects' in
// the reference watch. When every version matches and nothing is due by time, the reconcile
// decides from them alone. Any difference (a Secret edited by hand, changed credentials, a
// cache not yet synced) falls through to the full read.

// verifyFromMetadata returns the requeue of a reconcile that has nothing to do, judged from
// status and the metadata caches alone; false when that cannot be told without reading.
func (r *BankTokenRequestReconciler) verifyFromMetadata(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, conn *resolvedConnection, now time.Time) (ctrl.Result, bool) {
	observed := btr.Status.Observed
	// A spec that names an issuer is resolved against its metadata on every reconcile.
	if observed == nil || btr.Spec.Issuer != "" || observed.OutputSecret == "" || r.ownedSecrets == nil || r.references == nil || !keptAndNotDue(btr, now) {
		return ctrl.Result{}, false
	}
	if !r.ownedSecretAt(ctx, btr, outputSecretName(btr), observed.OutputSecret) ||
		!r.ownedSecretAt(ctx, btr, refreshSecretName(btr), observed.RefreshTokenSecret) {
		return ctrl.Result{}, false
	}
	versions, ok := r.watchedReferenceVersions(btr, conn)
	if !ok || r.observedInputs(btr, observedVersions(conn, versions)) != observed.Inputs {
		return ctrl.Result{}, false
	}
	next := btr.Status.RenewalTime.Time
	if btr.Status.ExpiresAt.Time.Before(next) {
		next = btr.Status.ExpiresAt.Time
	}
	return requeueAt(next, now), true
}

// keptAndNotDue: status says the current generation holds a good token, with no failure,
// no problem and no forced refresh waiting, and neither its renewal nor its expiry has come.
func keptAndNotDue(btr *tokensv1alpha1.BankTokenRequest, now time.Time) bool {
	status := &btr.Status
	ready := meta.FindStatusCondition(status.Conditions, tokensv1alpha1.ConditionReady)
	_, _, refreshWaiting := refreshRequested(policyInput{Request: btr})
	return status.ObservedGeneration == btr.Generation && status.FailedAttempts == 0 && !btr.Spec.Suspend &&
		ready != nil && ready.Status == metav1.ConditionTrue && ready.Reason == tokensv1alpha1.ReasonTokenIssued &&
		ready.ObservedGeneration == btr.Generation &&
		meta.FindStatusCondition(status.Conditions, tokensv1alpha1.ConditionStalled) == nil &&
		meta.FindStatusCondition(status.Conditions, tokensv1alpha1.ConditionReconciling) == nil &&
		!refreshWaiting &&
		status.RenewalTime != nil && now.Before(status.RenewalTime.Time) &&
		status.ExpiresAt != nil && now.Before(status.ExpiresAt.Time)
}

// ownedSecretAt reports whether the manager's cache holds the owned Secret at version,
// controlled by btr; version "" means it must not exist.
func (r *BankTokenRequestReconciler) ownedSecretAt(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, name, version string) bool {
	cached := ownedSecretMetadata()
	err := r.ownedSecrets.Get(ctx, types.NamespacedName{Namespace: btr.Namespace, Name: name}, cached)
	if version == "" {
		return apierrors.IsNotFound(err)
	}
	if err != nil || cached.ResourceVersion != version {
		return false
	}
	owner := metav1.GetControllerOf(cached)
	return owner != nil && owner.UID == btr.UID
}

// watchedReferenceVersions are the versions of the objects btr reads (from conn's Secrets
// namespace when it names one) as the reference watch last saw them; false when one is
// unknown (not synced, missing, or not watched).
func (r *BankTokenRequestReconciler) watchedReferenceVersions(btr *tokensv1alpha1.BankTokenRequest, conn *resolvedConnection) ([]string, bool) {
	refs := bankClientReferences(&btr.Spec.BankClient)
	namespace := referencesNamespace(btr, conn)
	versions := make([]string, 0, len(refs))
	for _, ref := range refs {
		kind, name, _ := strings.Cut(ref, "/")
		version, ok := r.references.VersionOf(kind, namespace, name)
		if !ok {
			return nil, false
		}
		versions = append(versions, referenceVersion(kind, name, version))
	}
	return versions, true
}

// referenceVersion names one version of a referenced object. The resourceVersion alone is
// enough: a deleted and recreated object never gets its predecessor's.
func referenceVersion(kind, name, resourceVersion string) string {
	return kind + "/" + name + "/" + resourceVersion
}

// observedVersions are the versions a kept decision rests on besides the spec: the
// referenced objects', and the connection's spec for a request that names one.
func observedVersions(conn *resolvedConnection, referenced []string) []string {
	if conn == nil {
		return referenced
	}
	return append(slices.Clone(referenced), conn.observedVersion())
}

// observedInputs fingerprints what a kept decision rests on beside the owned Secrets: the
// spec, the referenced objects' versions, whether the finalizer is held, and the operator's
// Settings, whole (a restart with other flags verifies everything once).
func (r *BankTokenRequestReconciler) observedInputs(btr *tokensv1alpha1.BankTokenRequest, versions []string) string {
	versions = slices.Sorted(slices.Values(versions))
	versions = append(versions,
		fmt.Sprintf("settings/%s/revocation/%t", r.Settings.fingerprint(), r.Revoker != nil),
		fmt.Sprintf("finalizer/%t", controllerutil.ContainsFinalizer(btr, finalizerRevokeGrants)))
	return requestHash(&btr.Spec, versions)
}

// ownedSecretVersions are the resourceVersions of a resource's owned Secrets.
type ownedSecretVersions struct{ output, refreshToken string }

// lastOwnWrites are the versions the reconciler last wrote of btr's owned Secrets; compared
// before and after act, they tell what act wrote.
func (r *BankTokenRequestReconciler) lastOwnWrites(btr *tokensv1alpha1.BankTokenRequest) ownedSecretVersions {
	return ownedSecretVersions{
		output:       r.ownWrites.latest(types.NamespacedName{Namespace: btr.Namespace, Name: outputSecretName(btr)}),
		refreshToken: r.ownWrites.latest(types.NamespacedName{Namespace: btr.Namespace, Name: refreshSecretName(btr)}),
	}
}

// observedAfter is what status.observed records after a reconcile: the versions of the
// owned Secrets as act left them and the inputs' fingerprint, or nil when the outcome left
// something to do (a failure, a problem, a grant waiting to be revoked), so that the next
// reconcile reads everything.
func (r *BankTokenRequestReconciler) observedAfter(btr *tokensv1alpha1.BankTokenRequest, g *gathered, o outcome, before ownedSecretVersions) *tokensv1alpha1.ObservedVersions {
	if (o.kind != outcomeKept && o.kind != outcomeIssued) || o.err != nil || !o.revocations.next.IsZero() {
		return nil
	}
	after := r.lastOwnWrites(btr)
	observed := &tokensv1alpha1.ObservedVersions{
		OutputSecret:       versionAfterAct(g.OutputSecret, before.output, after.output),
		RefreshTokenSecret: versionAfterAct(g.Refresh.secret, before.refreshToken, after.refreshToken),
		Inputs:             r.observedInputs(btr, observedVersions(g.Connection, g.ReferencedVersions)),
	}
	if observed.OutputSecret == "" {
		return nil
	}
	return observed
}

// versionAfterAct is the version act wrote, or else the version gathered ("" for none).
func versionAfterAct(read *corev1.Secret, writtenBefore, writtenAfter string) string {
	if writtenAfter != writtenBefore {
		return writtenAfter
	}
	if read == nil {
		return ""
	}
	return read.ResourceVersion
}
