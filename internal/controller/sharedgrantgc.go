package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// A holder goes when no request reads its grant any more: its consumers deleted, refused by
// a gate, moved to another scope or connection, or its connection back to PerRequest, and
// none of their output Secrets holding its token. It goes after a grace (SharedGrantGrace,
// never less than the propagation delay): a consumer deleted and created again soon after
// finds the same grant, and the workloads of the last reader to take a token of its own
// may use the shared one for the propagation delay. Deleting it is enough: its finalizer
// revokes its grants, as any request's does. Until then its status says for how many
// requests it holds the grant.

// annotationUnusedSince on a holder: when the operator first found no request reading its grant.
const annotationUnusedSince = "tokens.banktoken.io/unused-since"

// eventSharedGrantReleased: a holder no request read for the grace was deleted.
const eventSharedGrantReleased = "SharedGrantReleased"

// sharedGrantUse is what a holder's reconcile found of its readers; the zero value, for a
// request that holds no shared grant, changes nothing.
type sharedGrantUse struct {
	holder bool
	// connection names the holder's connection in its status.
	connection string
	readers    int
	// unusedSince is when no request read the grant any more, releaseAt when the holder goes;
	// zero while one reads it.
	unusedSince, releaseAt time.Time
}

// useOfSharedGrant counts the holder's readers and keeps its unused-since annotation in
// step; released is true when the grace is over and the holder was deleted.
func (r *BankTokenRequestReconciler) useOfSharedGrant(ctx context.Context, resolved resolution, now time.Time) (use sharedGrantUse, released bool, err error) {
	btr := resolved.request
	use = sharedGrantUse{holder: true, connection: holderConnection(resolved)}
	if use.readers, err = r.sharedGrantReaders(ctx, btr, resolved.connection); err != nil {
		return use, false, err
	}
	if use.readers > 0 {
		return use, false, r.markUnusedSince(ctx, btr, "")
	}
	since, err := time.Parse(time.RFC3339, btr.Annotations[annotationUnusedSince])
	if err != nil {
		since = wholeSecondAfter(now)
		if err := r.markUnusedSince(ctx, btr, formatTime(since)); err != nil {
			return use, false, err
		}
	}
	use.unusedSince, use.releaseAt = since, since.Add(r.sharedGrantGrace())
	if now.Before(use.releaseAt) {
		return use, false, nil
	}
	return use, true, r.releaseSharedGrant(ctx, btr, since)
}

// sharedGrantGrace is SharedGrantGrace, never less than the propagation delay.
func (r *BankTokenRequestReconciler) sharedGrantGrace() time.Duration {
	return max(r.SharedGrantGrace, r.SecretPropagationDelay)
}

// holderConnection names the holder's connection, from its spec when it cannot be read.
func holderConnection(resolved resolution) string {
	if resolved.connection != nil {
		return resolved.connection.String()
	}
	ref := resolved.request.Spec.ConnectionRef
	return ref.KindOrDefault() + " " + ref.Name
}

// markUnusedSince sets the unused-since annotation to since, or removes it for "".
func (r *BankTokenRequestReconciler) markUnusedSince(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, since string) error {
	if btr.Annotations[annotationUnusedSince] == since {
		return nil
	}
	// As patchFinalizer: on a copy, only metadata taken back (btr is the effective request).
	patched := btr.DeepCopy()
	if since == "" {
		delete(patched.Annotations, annotationUnusedSince)
	} else {
		if patched.Annotations == nil {
			patched.Annotations = map[string]string{}
		}
		patched.Annotations[annotationUnusedSince] = since
	}
	if err := r.Client.Patch(ctx, patched, client.MergeFrom(btr.DeepCopy())); err != nil {
		return fmt.Errorf("marking when the shared grant was last read: %w", err)
	}
	btr.ObjectMeta = patched.ObjectMeta
	return nil
}

// releaseSharedGrant deletes the holder; its finalizer revokes the grant. The UID
// precondition keeps a holder created again meanwhile.
func (r *BankTokenRequestReconciler) releaseSharedGrant(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, since time.Time) error {
	r.event(btr, corev1.EventTypeNormal, eventSharedGrantReleased, "Release",
		"no request has read this shared grant since %s: deleting it, which revokes the grant", formatTime(since))
	err := r.Client.Delete(ctx, btr, client.Preconditions{UID: &btr.UID})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting the unused shared grant: %w", err)
	}
	return nil
}

// note is what the holder's Ready message starts with: for how many requests it holds the
// grant, or since when none reads it and when it goes. It holds no "; ", which separates it
// from the rest.
func (u sharedGrantUse) note() string {
	switch {
	case !u.unusedSince.IsZero():
		return fmt.Sprintf("shared grant of %s, read by no request since %s: deleted at %s",
			u.connection, formatTime(u.unusedSince), formatTime(u.releaseAt))
	case u.readers == 1:
		return "shared grant of " + u.connection + " for 1 request"
	}
	return fmt.Sprintf("shared grant of %s for %d requests", u.connection, u.readers)
}

// sharedGrantNotePrefix starts every note, so that a message carrying an older one is known.
const sharedGrantNotePrefix = "shared grant of "

// noted says whether btr's status already carries what use would write: a reconcile that
// verifies from metadata must not skip a changed count.
func (u sharedGrantUse) noted(btr *tokensv1alpha1.BankTokenRequest) bool {
	if !u.holder {
		return true
	}
	ready := meta.FindStatusCondition(btr.Status.Conditions, tokensv1alpha1.ConditionReady)
	return ready != nil && strings.HasPrefix(ready.Message, u.note()+"; ")
}

// report adds to the status report what sharing changes: a holder's Ready message starts
// with its note; a request that obtained a token of its own no longer holds a shared one.
func (u sharedGrantUse) report(btr *tokensv1alpha1.BankTokenRequest, o outcome) {
	if o.kind == outcomeIssued {
		btr.Status.SharedGrant = nil
	}
	ready := meta.FindStatusCondition(btr.Status.Conditions, tokensv1alpha1.ConditionReady)
	if !u.holder || ready == nil {
		return
	}
	message := ready.Message
	if strings.HasPrefix(message, sharedGrantNotePrefix) {
		if _, rest, found := strings.Cut(message, "; "); found {
			message = rest
		}
	}
	setReady(btr, ready.Status, ready.Reason, u.note()+"; "+message)
}

// requeue brings a holder back when its grace is over, if nothing sooner does.
func (u sharedGrantUse) requeue(result ctrl.Result, now time.Time) ctrl.Result {
	if u.releaseAt.IsZero() || (result.RequeueAfter > 0 && now.Add(result.RequeueAfter).Before(u.releaseAt)) {
		return result
	}
	return requeueAt(u.releaseAt, now)
}
