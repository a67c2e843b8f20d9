package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// wantsFinalizer: the resource holds grants that can be revoked, so its deletion waits for
// that. store adds it before the first refresh token is written (ensureFinalizer);
// syncFinalizer keeps it in step with what the refresh-token Secret holds.
func (r *BankTokenRequestReconciler) wantsFinalizer(g *gathered) bool {
	if r.Revoker == nil {
		return false
	}
	holdsChains := !g.RefreshToken.IsZero() || !g.StandbyRefreshToken.IsZero()
	return len(g.Revocations) > 0 || (holdsChains && recordedRevocationEndpoint(g) != "")
}

// syncFinalizer adds or removes the finalizer as wantsFinalizer says.
func (r *BankTokenRequestReconciler) syncFinalizer(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) error {
	want := r.wantsFinalizer(g)
	if want == controllerutil.ContainsFinalizer(btr, finalizerRevokeGrants) {
		return nil
	}
	return r.patchFinalizer(ctx, btr, want)
}

// ensureFinalizer adds the finalizer, if missing, before grants that can be revoked are
// written down.
func (r *BankTokenRequestReconciler) ensureFinalizer(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest) error {
	if r.Revoker == nil || controllerutil.ContainsFinalizer(btr, finalizerRevokeGrants) {
		return nil
	}
	return r.patchFinalizer(ctx, btr, true)
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
	patch := client.MergeFromWithOptions(btr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(btr, finalizerRevokeGrants)
	if err := r.Client.Patch(ctx, btr, patch); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	return ctrl.Result{}, nil
}

// revokeAllGrants revokes the held chains and the queued grants, whatever their time: once
// the resource is gone its output Secret goes too, so no workload reads its tokens any more.
func (r *BankTokenRequestReconciler) revokeAllGrants(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) (revoked, left int, why string) {
	grants := g.Revocations
	if endpoint := recordedRevocationEndpoint(g); endpoint != "" {
		for _, rt := range []providers.Secret{g.RefreshToken, g.StandbyRefreshToken} {
			if r.mayBeLive(g, rt) {
				grants = append(grants, pendingRevocation{Token: rt, Endpoint: endpoint})
			}
		}
	}
	if len(grants) > 0 && g.Problem != nil {
		// Without the credentials the client cannot authenticate to revoke anything.
		return 0, len(grants), g.Problem.Message
	}
	var failures []string
	for _, p := range grants {
		err := r.Revoker.Revoke(ctx, r.providerRequest(btr, g), p.Endpoint, p.Token)
		if err == nil {
			revoked++
			continue
		}
		left++
		failures = append(failures, asFailure(err).Message)
		logf.FromContext(ctx).Info("revoking a grant before deletion failed", "message", asFailure(err).Message)
	}
	why = strings.Join(failures, "; ")
	if len(why) > maxEventDetail {
		why = why[:maxEventDetail] + "…"
	}
	return revoked, left, why
}

// maxEventDetail keeps an event's note well under the Events API's 1 kB limit.
const maxEventDetail = 600
