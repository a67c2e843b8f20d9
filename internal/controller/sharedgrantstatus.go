package controller

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// What a shared grant's consumer says in status: the token its output Secret holds (the
// holder's renewal time with it), the holder it comes from, and how the holder fares: a
// consumer's conditions follow its holder's, and a valid copy keeps Ready True while the
// holder fails to renew.

// reportConsumer writes into status what the consumer holds and how its shared grant fares.
func reportConsumer(btr *tokensv1alpha1.BankTokenRequest, c consumption, now time.Time) {
	status := &btr.Status
	status.ObservedGeneration = btr.Generation
	// Nothing to verify from metadata, no certificate of its own: the holder has those.
	status.Observed, status.ClientCertificate = nil, nil
	clearFailures(btr)
	if c.problem != nil {
		setInputProblem(btr, c.held, c.problem, now)
		return
	}
	status.SharedGrant = nil
	if namespace, name, ok := strings.Cut(c.heldFrom, "/"); ok {
		status.SharedGrant = &tokensv1alpha1.SharedGrantReference{Namespace: namespace, Name: name}
	}
	mirrorHeldToken(btr, c)
	switch {
	case btr.Spec.Suspend:
		setSuspended(btr, c.held, now)
	case c.conflict != "":
		setReadyGivenHeld(btr, c.held, now, tokensv1alpha1.ReasonSharedGrantConflict, c.conflict, false)
		setStalled(btr, tokensv1alpha1.ReasonSharedGrantConflict, c.conflict)
		setReconciling(btr, "", "")
	default:
		setSharedGrantConditions(btr, c, now)
	}
}

// mirrorHeldToken says in status what the output Secret holds; the renewal time is the
// holder's, when the token held is its current one.
func mirrorHeldToken(btr *tokensv1alpha1.BankTokenRequest, c consumption) {
	status := &btr.Status
	status.TokenType, status.Scope = "", ""
	status.IssuedAt, status.ExpiresAt, status.RenewalTime = nil, nil, nil
	held := c.held
	if held == nil {
		return
	}
	status.SecretName = outputSecretName(btr)
	status.TokenType, status.Scope = held.TokenType, held.Scope
	status.IssuedAt = &metav1.Time{Time: held.IssuedAt}
	status.ExpiresAt = &metav1.Time{Time: held.ExpiresAt}
	if c.heldFrom == c.holderKey.String() && c.holder != nil && c.holder.Status.IssuedAt != nil &&
		c.holder.Status.IssuedAt.Equal(status.IssuedAt) {
		status.RenewalTime = c.holder.Status.RenewalTime.DeepCopy()
	}
}

// setSharedGrantConditions sets the consumer's conditions from the token it holds and its
// holder's conditions.
func setSharedGrantConditions(btr *tokensv1alpha1.BankTokenRequest, c consumption, now time.Time) {
	about := fmt.Sprintf("the shared grant of %s for scope %q (BankTokenRequest %s)", c.conn, normalizedScope(btr.Spec.Scope), c.holderKey)
	ready, stalled := holderConditions(c.holder)
	switch {
	case c.heldFrom != "" && ready != nil && ready.Status == metav1.ConditionTrue && ready.Reason == tokensv1alpha1.ReasonTokenIssued:
		setReadyGivenHeld(btr, c.held, now, tokensv1alpha1.ReasonTokenIssued, "from "+about+renewalSettingsNote(btr), false)
		setReconciling(btr, "", "")
		setStalled(btr, "", "")
	case stalled != nil:
		message := about + " cannot obtain a token: " + stalled.Reason + ": " + stalled.Message
		setReadyGivenHeld(btr, c.held, now, tokensv1alpha1.ReasonSharedGrantFailing, message, true)
		setStalled(btr, tokensv1alpha1.ReasonSharedGrantFailing, message)
		setReconciling(btr, "", "")
	case c.heldFrom != "" && ready != nil:
		message := about + " is not renewing: " + ready.Reason + ": " + ready.Message
		setReadyGivenHeld(btr, c.held, now, tokensv1alpha1.ReasonSharedGrantFailing, message, true)
		setStalled(btr, "", "")
		setReconciling(btr, "", "")
		if !c.held.validAt(now) {
			setReconciling(btr, tokensv1alpha1.ReasonSharedGrantFailing, message)
		}
	default:
		setWaitingForSharedGrant(btr, c.held, "waiting for "+about+" to hold a token", now)
	}
}

// setWaitingForSharedGrant: the holder has no token yet. A valid token the request holds
// (its own, from before its connection shared grants) keeps Ready True until it is replaced.
func setWaitingForSharedGrant(btr *tokensv1alpha1.BankTokenRequest, held *heldToken, message string, now time.Time) {
	setStalled(btr, "", "")
	setReconciling(btr, tokensv1alpha1.ReasonWaitingForSharedGrant, message)
	if held.validAt(now) {
		setReady(btr, metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued,
			fmt.Sprintf("token valid until %s; %s; the token held stays until then", formatTime(held.ExpiresAt), message))
		return
	}
	setReady(btr, metav1.ConditionFalse, tokensv1alpha1.ReasonWaitingForSharedGrant, message)
}

// holderConditions are the holder's Ready and, when true, Stalled conditions; nil for a
// holder not yet reconciled, or not yet seen.
func holderConditions(holder *tokensv1alpha1.BankTokenRequest) (ready, stalled *metav1.Condition) {
	if holder == nil || holder.Status.ObservedGeneration == 0 {
		return nil, nil
	}
	ready = meta.FindStatusCondition(holder.Status.Conditions, tokensv1alpha1.ConditionReady)
	if s := meta.FindStatusCondition(holder.Status.Conditions, tokensv1alpha1.ConditionStalled); s != nil && s.Status == metav1.ConditionTrue {
		stalled = s
	}
	return ready, stalled
}

// renewalSettingsNote says that the request's renewal settings do not apply: a shared grant
// renews on the default schedule (see newSharedGrantHolder for why).
func renewalSettingsNote(btr *tokensv1alpha1.BankTokenRequest) string {
	spec := &btr.Spec
	if spec.RenewBefore == nil && spec.RenewBeforePercentage == nil && spec.MaxRefreshInterval == nil {
		return ""
	}
	return "; spec.renewBefore, renewBeforePercentage and maxRefreshInterval do not apply: a shared grant renews on the default schedule"
}

// requeue is when the consumer comes back by itself: when the token it holds expires (Ready
// turns False on time), when a grant of its own is due to be revoked, and, while it waits
// for its holder, in case the holder's status event is missed. A renewal of the holder
// brings it back through the watch.
// holderRenewalCheck is when a consumer in a shard looks at its holder again: no watch
// brings it back when the holder, in another shard, renews. Just after the holder's renewal
// time, and every holderRenewalPoll after it until the holder has renewed (one read of the
// holder each time); the holder's renewal leaves the copy allowance for this.
func (c consumption) holderRenewalCheck(now time.Time) time.Time {
	if c.holder == nil || c.holder.Status.RenewalTime == nil || !c.holder.Status.RenewalTime.After(now) {
		return now.Add(holderRenewalPoll)
	}
	return c.holder.Status.RenewalTime.Add(holderRenewalPoll / 2)
}

// holderFirstTokenCheck is when a consumer in a shard looks again at a holder that has no
// token to give yet: soon after the holder was created (its first token takes a call), less
// often the longer it has had none (a quarter of its age, at most holderWaitRecheck), so
// that a holder whose bank fails is not read every second by each of its consumers.
func (c consumption) holderFirstTokenCheck(now time.Time) time.Time {
	wait := holderRenewalPoll
	if c.holder != nil && !c.holder.CreationTimestamp.IsZero() {
		wait = min(max(now.Sub(c.holder.CreationTimestamp.Time)/4, holderRenewalPoll), holderWaitRecheck)
	}
	return now.Add(wait)
}

// holderRenewalPoll is how often a consumer in a shard reads a holder whose renewal is due.
const holderRenewalPoll = time.Second

func (c consumption) requeue(uid types.UID, now time.Time) ctrl.Result {
	if c.busy {
		return ctrl.Result{RequeueAfter: namespaceBusyDelay(uid, now)}
	}
	var at time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (at.IsZero() || t.Before(at)) {
			at = t
		}
	}
	if c.held.validAt(now) {
		earliest(c.held.ExpiresAt)
	}
	earliest(c.revocations.next)
	switch {
	case c.problem != nil || c.conflict != "":
	case c.holder == nil:
		earliest(now.Add(holderCacheRecheck))
	case c.heldFrom != c.holderKey.String() && c.pollHolder:
		earliest(c.holderFirstTokenCheck(now))
	case c.heldFrom != c.holderKey.String():
		earliest(now.Add(holderWaitRecheck))
	case c.pollHolder:
		earliest(c.holderRenewalCheck(now))
	}
	if at.IsZero() {
		return ctrl.Result{}
	}
	return requeueAt(at, now)
}
