package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// wantsFinalizer is the one decision on the finalizer, made before act: the resource may
// hold a grant that can be revoked by the end of this reconcile, so its deletion must wait
// for that. It holds one (a chain with a revocation endpoint, or grants queued), or is about
// to obtain a token from a bank that can be asked to revoke what comes with it. A token
// issued under the same inputs without a refresh token predicts the next one: a bank that
// issues none (Keycloak's client_credentials) does not make the finalizer come and go at
// every renewal. Should such a bank start issuing one, the reconcile after stores adds it.
func (r *BankTokenRequestReconciler) wantsFinalizer(g *gathered, d decision) bool {
	if r.Revoker == nil {
		return false
	}
	if len(g.Refresh.Revocations) > 0 || (g.Refresh.holdsChains() && recordedRevocationEndpoint(g) != "") {
		return true
	}
	issuedWithoutRefreshToken := g.Held != nil && g.Held.RequestHash == g.RequestHash && !g.Refresh.holdsChains()
	return d.action == actObtain && revocationEndpoint(&g.Request.Spec) != "" && !issuedWithoutRefreshToken
}

// syncFinalizer adds or removes the finalizer as wantsFinalizer says, before act: act then
// never changes the resource, and status is patched on the version it started from.
func (r *BankTokenRequestReconciler) syncFinalizer(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, d decision) error {
	want := r.wantsFinalizer(g, d)
	if want == controllerutil.ContainsFinalizer(btr, finalizerRevokeGrants) {
		return nil
	}
	return r.patchFinalizer(ctx, btr, want)
}

// patchFinalizer adds or removes the finalizer with an optimistic lock, so that other
// finalizers set meanwhile are never dropped.
func (r *BankTokenRequestReconciler) patchFinalizer(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, add bool) error {
	patch := client.MergeFromWithOptions(btr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if add {
		controllerutil.AddFinalizer(btr, finalizerRevokeGrants)
	} else {
		controllerutil.RemoveFinalizer(btr, finalizerRevokeGrants)
	}
	if err := r.Client.Patch(ctx, btr, patch); err != nil {
		return fmt.Errorf("updating the finalizer: %w", err)
	}
	return nil
}

// finalize revokes every grant the resource leaves at the bank, then lets the deletion go
// on. It is bounded: a bank that is down holds the deletion for at most
// deletionRevocationBudget, and a Warning event says what was left live.
func (r *BankTokenRequestReconciler) finalize(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(btr, finalizerRevokeGrants) {
		return ctrl.Result{}, nil
	}
	var result ctrl.Result
	var err error
	// Revoking calls the bank: it takes one of the namespace's slots like a token call.
	if !r.withTokenCallSlot(btr, func() { result, err = r.revokeAndRelease(ctx, btr) }) {
		return ctrl.Result{RequeueAfter: namespaceBusyDelay(btr.UID, r.Clock.Now())}, nil
	}
	return result, err
}

// revokeAndRelease revokes what finalize must, then removes the finalizer.
func (r *BankTokenRequestReconciler) revokeAndRelease(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest) (ctrl.Result, error) {
	revokeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deletionRevocationBudget)
	defer cancel()
	g, err := r.gather(revokeCtx, btr)
	if err != nil {
		return ctrl.Result{}, err
	}
	revoked, left, why := r.revokeAllGrants(revokeCtx, btr, g)
	if revoked > 0 {
		r.event(btr, corev1.EventTypeNormal, eventGrantsRevoked, "Delete", "revoked %d grant(s) at the bank before deletion", revoked)
	}
	if left > 0 {
		r.event(btr, corev1.EventTypeWarning, eventGrantsLeftLive, "Delete",
			"%d grant(s) could not be revoked before deletion and stay live at the bank until they expire: %s", left, why)
	}
	if err := r.patchFinalizer(ctx, btr, false); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

// revokeAllGrants revokes the held chains and the queued grants, whatever their time: once
// the resource is gone its output Secret goes too, so no workload reads its tokens any more.
func (r *BankTokenRequestReconciler) revokeAllGrants(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) (revoked, left int, why string) {
	grants := g.Refresh.Revocations
	if endpoint := recordedRevocationEndpoint(g); endpoint != "" {
		for _, rt := range []providers.Secret{g.Refresh.Active, g.Refresh.Standby} {
			if r.mayBeLive(g, rt) {
				grants = append(grants, pendingRevocation{Token: rt, Endpoint: endpoint})
			}
		}
	}
	if len(grants) > 0 && g.Problem != nil {
		// Without the credentials the client cannot authenticate to revoke anything.
		return 0, len(grants), g.Problem.Message
	}
	report, _ := r.revokeGrants(ctx, btr, g, grants, r.Clock.Now(), false)
	why = strings.Join(report.failures, "; ")
	if len(why) > maxEventDetail {
		why = why[:maxEventDetail] + "…"
	}
	return report.revoked, report.leftLive, why
}

// maxEventDetail keeps an event's note well under the Events API's 1 kB limit.
const maxEventDetail = 600
