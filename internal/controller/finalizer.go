package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// holdsRevocableGrants is the one rule for the finalizer: a resource whose refresh-token
// Secret holds grants the bank can be asked to revoke (a chain with a revocation endpoint,
// or grants queued) must not go before they are revoked. recordedEndpoint is the
// revocation endpoint of the state's chains.
func (r *BankTokenRequestReconciler) holdsRevocableGrants(s refreshState, recordedEndpoint string) bool {
	return r.Revoker != nil && (len(s.Revocations) > 0 || (s.holdsChains() && recordedEndpoint != ""))
}

// syncFinalizer brings the finalizer in step with the grants held, before act: it is added
// or removed here, and only added (by writeRefreshState, through ensureFinalizer) when act is
// about to write down a grant it did not hold, for a bank's answer cannot be known before
// the call (a client_credentials grant may or may not come with a refresh token).
func (r *BankTokenRequestReconciler) syncFinalizer(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) error {
	want := r.holdsRevocableGrants(g.Refresh, recordedRevocationEndpoint(g))
	if want == controllerutil.ContainsFinalizer(btr, finalizerRevokeGrants) {
		return nil
	}
	return r.patchFinalizer(ctx, btr, want)
}

// ensureFinalizer adds the finalizer, if missing, before next is written down.
func (r *BankTokenRequestReconciler) ensureFinalizer(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, next refreshState) error {
	if !r.holdsRevocableGrants(next, next.RevocationEndpoint) || controllerutil.ContainsFinalizer(btr, finalizerRevokeGrants) {
		return nil
	}
	return r.patchFinalizer(ctx, btr, true)
}

// patchFinalizer adds or removes the finalizer with an optimistic lock, so that other
// finalizers set meanwhile are never dropped.
// The patch is sent on a copy, and only the metadata of the answer is taken back: the answer
// is the stored request, without the connection's client that btr, the effective request,
// may carry (see connection.go).
func (r *BankTokenRequestReconciler) patchFinalizer(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, add bool) error {
	patched := btr.DeepCopy()
	patch := client.MergeFromWithOptions(btr.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if add {
		controllerutil.AddFinalizer(patched, finalizerRevokeGrants)
	} else {
		controllerutil.RemoveFinalizer(patched, finalizerRevokeGrants)
	}
	if err := r.Client.Patch(ctx, patched, patch); err != nil {
		return fmt.Errorf("updating the finalizer: %w", err)
	}
	btr.ObjectMeta = patched.ObjectMeta
	return nil
}

// finalize revokes every grant the resource leaves at the bank, then lets the deletion go
// on. It is bounded: a bank that is down holds the deletion for at most
// deletionRevocationBudget, and a Warning event says what was left live. A request whose
// connection is gone cannot revoke (the credentials were the connection's), and goes at once.
// One whose connection the bank has paused waits for the pause's end: the bank asked that
// nothing be sent meanwhile, and a revocation sent anyway would be refused, its grant left live.
func (r *BankTokenRequestReconciler) finalize(ctx context.Context, resolved resolution) (ctrl.Result, error) {
	btr := resolved.request
	r.withdrawFromBudget(btr, resolved.connection)
	if !controllerutil.ContainsFinalizer(btr, finalizerRevokeGrants) {
		return ctrl.Result{}, nil
	}
	now := r.Clock.Now()
	if until := r.connectionPausedUntil(resolved.connection, now); !until.IsZero() {
		return requeueAt(until, now), nil
	}
	var result ctrl.Result
	var err error
	// Revoking calls the bank: it takes one of the namespace's slots like a token call.
	if !r.withTokenCallSlot(btr, func() { result, err = r.revokeAndRelease(ctx, resolved) }) {
		return ctrl.Result{RequeueAfter: namespaceBusyDelay(btr.UID, r.Clock.Now())}, nil
	}
	return result, err
}

// revokeAndRelease revokes what finalize must, then removes the finalizer.
func (r *BankTokenRequestReconciler) revokeAndRelease(ctx context.Context, resolved resolution) (ctrl.Result, error) {
	btr := resolved.request
	revokeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deletionRevocationBudget)
	defer cancel()
	revoked, left, why, err := r.revokeAtDeletion(revokeCtx, resolved)
	if err != nil {
		return ctrl.Result{}, err
	}
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

// revokeAtDeletion revokes every grant the resource leaves. A request whose connection is
// gone cannot: the credentials that authenticate a revocation were the connection's.
func (r *BankTokenRequestReconciler) revokeAtDeletion(ctx context.Context, resolved resolution) (revoked, left int, why string, err error) {
	btr := resolved.request
	if btr.Spec.ConnectionRef != nil && resolved.connection == nil {
		g := &gathered{Request: btr}
		if err := r.readOwnedSecrets(ctx, btr, g); err != nil && !isInputProblem(err) {
			return 0, 0, "", err
		}
		return 0, len(r.heldGrants(g)), "the connection is gone, and with it the credentials a revocation needs (" +
			resolved.refusal.Message + ")", nil
	}
	g, err := r.gather(ctx, btr, resolved.connection)
	if err != nil {
		return 0, 0, "", err
	}
	revoked, left, why = r.revokeAllGrants(ctx, btr, g)
	return revoked, left, why, nil
}

// revokeAllGrants revokes the held chains and the queued grants, whatever their time: once
// the resource is gone its output Secret goes too, so no workload reads its tokens any more.
func (r *BankTokenRequestReconciler) revokeAllGrants(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) (revoked, left int, why string) {
	grants := r.heldGrants(g)
	if len(grants) > 0 && g.Problem != nil {
		// Without the credentials the client cannot authenticate to revoke anything.
		return 0, len(grants), g.Problem.Message
	}
	if why := revocationEndsOthersGrants(g); len(grants) > 0 && why != "" {
		return 0, len(grants), why
	}
	report, _ := r.revokeGrants(ctx, btr, g, grants, r.Clock.Now(), false)
	why = strings.Join(report.failures, "; ")
	if len(why) > maxEventDetail {
		why = why[:maxEventDetail] + "…"
	}
	return report.revoked, report.leftLive, why
}

// heldGrants are the grants the refresh-token Secret holds that may still be live at the
// bank: those queued for revocation, and the held chains where their revocation endpoint
// is known.
func (r *BankTokenRequestReconciler) heldGrants(g *gathered) []pendingRevocation {
	grants := slices.Clone(g.Refresh.Revocations)
	if endpoint := recordedRevocationEndpoint(g); endpoint != "" {
		for _, rt := range []providers.Secret{g.Refresh.Active, g.Refresh.Standby} {
			if r.mayBeLive(g, rt) {
				grants = append(grants, pendingRevocation{Token: rt, Endpoint: endpoint})
			}
		}
	}
	return grants
}

// maxEventDetail keeps an event's note well under the Events API's 1 kB limit.
const maxEventDetail = 600
