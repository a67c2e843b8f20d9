package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Losing access. A request its connection refuses (a gate that no longer admits it, a
// connection deleted, a connectionRef changed to one that refuses it) keeps no token: a
// consumer outside the gate must not go on using the bank client. So:
//   - the output Secret is emptied, not deleted: the kubelet removes the keys from the
//     volumes of running Pods that mount it (it keeps a deleted Secret's last content), the
//     operator holds no delete permission on Secrets, and the Secret stays the request's
//     own, ready for a token should access come back;
//   - the refresh tokens are dropped, and their grants revoked at the bank where it can be
//     asked to (with the connection's client, so before it is forgotten). A revocation that
//     fails for a while is retried; one that cannot be made (the connection is gone, a bank
//     whose revocation would end the grants of the connection's other requests) is reported
//     in an event and in status;
//   - the finalizer goes once nothing is left to revoke.

// annotationAccessWithdrawn on an emptied output Secret: the reason its token was taken away.
const annotationAccessWithdrawn = "tokens.banktoken.io/access-withdrawn"

// withdrawal is what taking a request's access away did in one reconcile.
type withdrawal struct {
	// tokenRemoved: the output Secret held a token and was emptied.
	tokenRemoved bool
	// revocations: what revoking the dropped grants did; next is when a failed one is retried.
	revocations revocationReport
	// busy: the namespace had no token-call slot free for the revocations; they wait.
	busy bool
}

// refuse answers a request its connection refuses: nothing is requested, what it held is
// taken away, and status says why, naming the connection and the rule.
func (r *BankTokenRequestReconciler) refuse(ctx context.Context, resolved resolution, now time.Time) (ctrl.Result, error) {
	btr, refusal := resolved.request, resolved.refusal
	r.withdrawFromBudget(btr, resolved.connection)
	original := btr.DeepCopy()
	w, err := r.withdrawAccess(ctx, resolved, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	setAccessRefused(btr, refusal, w.note())
	r.emitWithdrawalEvents(btr, original, refusal, w)
	if !equality.Semantic.DeepEqual(original.Status, btr.Status) {
		err = r.writeStatus(ctx, original, btr)
	}
	r.Metrics.observe(btr)
	switch {
	case w.busy:
		return ctrl.Result{RequeueAfter: namespaceBusyDelay(btr.UID, now)}, err
	case !w.revocations.next.IsZero():
		return requeueAt(w.revocations.next, now), err
	}
	return ctrl.Result{}, err
}

// withdrawAccess empties the output Secret, revokes and drops the grants, and releases the
// finalizer once nothing is left to revoke. Secrets that are not the request's own are
// left alone.
func (r *BankTokenRequestReconciler) withdrawAccess(ctx context.Context, resolved resolution, now time.Time) (withdrawal, error) {
	btr := resolved.request
	g := &gathered{Request: btr, Connection: resolved.connection}
	if err := r.readOwnedSecrets(ctx, btr, g); err != nil {
		if isInputProblem(err) {
			return withdrawal{}, nil
		}
		return withdrawal{}, err
	}
	var w withdrawal
	if g.OutputSecret != nil {
		// First, as it needs no call: the token is what a workload holds.
		w.tokenRemoved = len(g.OutputSecret.Data) > 0
		if err := r.writeOutputSecret(ctx, btr, g, nil, map[string]string{annotationAccessWithdrawn: resolved.refusal.Reason}); err != nil {
			return w, err
		}
	}
	held := g.Refresh
	if !held.holdsChains() && len(held.Revocations) == 0 {
		return w, r.releaseFinalizer(ctx, btr, held)
	}
	pending, err := r.revokeDropped(ctx, resolved, g, now, &w)
	if err != nil || w.busy {
		return w, err
	}
	if err := r.writeRefreshState(ctx, btr, &held, refreshState{secret: held.secret, Revocations: pending}); err != nil {
		return w, err
	}
	return w, r.releaseFinalizer(ctx, btr, held)
}

// revokeDropped revokes, within a token-call slot, the grants the request held that are
// due, and returns those to retry later (with the ones not yet due). Grants that cannot be
// revoked are counted in w as left live, with why.
func (r *BankTokenRequestReconciler) revokeDropped(ctx context.Context, resolved resolution, g *gathered, now time.Time, w *withdrawal) ([]pendingRevocation, error) {
	grants := r.heldGrants(g)
	if len(grants) == 0 || r.Revoker == nil {
		return nil, nil
	}
	why, err := r.whyUnrevocable(ctx, resolved, g)
	if err != nil || why != "" {
		w.revocations = revocationReport{leftLive: len(grants), failures: []string{why}}
		return nil, err
	}
	var due, later []pendingRevocation
	for _, p := range grants {
		if now.Before(p.NotBefore) {
			later = append(later, p)
		} else {
			due = append(due, p)
		}
	}
	var again []pendingRevocation
	if w.busy = !r.withTokenCallSlot(g.Request, func() {
		w.revocations, again = r.revokeGrants(ctx, g.Request, g, due, now, true)
	}); w.busy {
		return nil, nil
	}
	pending := append(again, later...)
	w.revocations.next = earliestDue(pending)
	return pending, nil
}

// whyUnrevocable says why the request's grants cannot be revoked now, "" when they can; it
// reads the connection's credentials into g, which a revocation authenticates with.
func (r *BankTokenRequestReconciler) whyUnrevocable(ctx context.Context, resolved resolution, g *gathered) (string, error) {
	switch {
	case resolved.connection == nil && resolved.refusal.Reason == tokensv1alpha1.ReasonConnectionNotFound:
		return "the connection is gone, and with it the credentials a revocation needs", nil
	case resolved.connection == nil:
		return fmt.Sprintf("the connection cannot be read (%s), and a revocation needs its credentials", resolved.refusal.Reason), nil
	}
	if why := revocationEndsOthersGrants(g); why != "" {
		return why, nil
	}
	if problem := r.checkEndpoint(g.Request); problem != nil {
		return problem.Message, nil
	}
	_, err := r.readClient(ctx, g.Request, g)
	var problem *inputProblem
	if errors.As(err, &problem) {
		return problem.Message, nil
	}
	if err == nil && g.Request.Spec.Issuer != "" {
		// A revocation goes with the token endpoint and assertion audience the metadata gives.
		if problem := r.resolveIssuer(ctx, g.Request, g); problem != nil {
			return problem.Message, nil
		}
	}
	return "", err
}

// releaseFinalizer removes the finalizer once the request holds nothing left to revoke.
func (r *BankTokenRequestReconciler) releaseFinalizer(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, held refreshState) error {
	if r.holdsRevocableGrants(held, held.RevocationEndpoint) || !controllerutil.ContainsFinalizer(btr, finalizerRevokeGrants) {
		return nil
	}
	return r.patchFinalizer(ctx, btr, false)
}

// note is what status adds to the refusal about what this reconcile took away.
func (w withdrawal) note() string {
	note := ""
	if w.tokenRemoved {
		note += "; the token was removed from the output Secret"
	}
	if n := w.revocations.revoked; n > 0 {
		note += fmt.Sprintf("; %d grant(s) revoked at the bank", n)
	}
	if n := w.revocations.leftLive; n > 0 {
		note += fmt.Sprintf("; %d grant(s) could not be revoked and stay live at the bank until they expire: %s", n, w.revocations.lastFailure())
	}
	if next := w.revocations.next; !next.IsZero() {
		note += "; revoking the remaining grants is tried again at " + formatTime(next)
	}
	return note
}

// eventAccessRefused: the request's connection refuses it, newly or for a new reason.
const (
	eventAccessRefused = "AccessRefused"
	// eventTokenWithdrawn: the token was removed from the output Secret.
	eventTokenWithdrawn = "TokenWithdrawn"
)

// emitWithdrawalEvents tells that the request was refused (once per reason) and what was
// taken from it.
func (r *BankTokenRequestReconciler) emitWithdrawalEvents(btr, before *tokensv1alpha1.BankTokenRequest, refusal *accessRefusal, w withdrawal) {
	if stalled := meta.FindStatusCondition(before.Status.Conditions, tokensv1alpha1.ConditionStalled); stalled == nil || stalled.Reason != refusal.Reason {
		r.event(btr, corev1.EventTypeWarning, eventAccessRefused, "Refuse", "%s: %s", refusal.Reason, refusal.Message)
	}
	if w.tokenRemoved {
		r.event(btr, corev1.EventTypeWarning, eventTokenWithdrawn, "Withdraw",
			"the token was removed from Secret %s: %s", outputSecretName(btr), refusal.Reason)
	}
	r.emitRevocationEvents(btr, w.revocations)
}
