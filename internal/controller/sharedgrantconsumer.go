package controller

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// A shared grant's consumer: a request whose connection shares grants and admits it. It
// never calls the bank and keeps no refresh token: it makes sure the holder exists, copies
// the holder's token into its own output Secret (read from the apiserver, as every Secret's
// data is), and says in status what it holds and how the holder fares. The holder's status
// changes bring its consumers back (sharedgrantwatch.go), so a renewal reaches them all at
// once.

// annotationSharedGrant on a consumer's output Secret names the holder ("<namespace>/<name>")
// whose token it holds.
const annotationSharedGrant = "tokens.banktoken.io/shared-grant"

// sharedCopyHashPrefix marks the request hash recorded with a copied token. No request's
// own hash carries it, so a request that stops reading the shared grant (its connection
// back to PerRequest) finds its inputs changed and obtains a token of its own at once.
const sharedCopyHashPrefix = "shared-grant:"

// Requeues of a consumer waiting for its holder, should the holder's status event be missed:
// soon while the cache does not show a holder just created, rarely otherwise.
const (
	holderCacheRecheck = 5 * time.Second
	holderWaitRecheck  = time.Minute
)

// eventSharedGrantHolderCreated: a consumer created the holder of its shared grant.
const eventSharedGrantHolderCreated = "SharedGrantHolderCreated"

// consumption is what one reconcile of a consumer found and did.
type consumption struct {
	conn      *resolvedConnection
	holderKey types.NamespacedName
	// holder is the holder as read, or as just created; nil while the cache shows none.
	holder   *tokensv1alpha1.BankTokenRequest
	created  bool
	conflict string
	// problem is with the consumer's own spec or output Secret.
	problem *inputProblem
	// held is the token the output Secret holds after this reconcile, and heldFrom the
	// holder whose token it is ("" for the request's own token).
	held     *heldToken
	heldFrom string
	// revocations is what revoking the grants the request held of its own did.
	revocations revocationReport
	busy        bool
	// pollHolder: the consumer is in a shard, where no watch brings it back when its holder
	// renews (holderRenewalCheck).
	pollHolder bool
}

// reconcileConsumer copies the shared grant's token and reports; the consumer's own
// grants, left from before its connection shared grants, are revoked once the shared token
// has replaced theirs.
func (r *BankTokenRequestReconciler) reconcileConsumer(ctx context.Context, resolved resolution, now time.Time) (ctrl.Result, error) {
	btr := resolved.request
	original := btr.DeepCopy()
	c, err := r.consume(ctx, resolved, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	reportConsumer(btr, c, now)
	if c.created {
		r.event(btr, corev1.EventTypeNormal, eventSharedGrantHolderCreated, "Share",
			"created BankTokenRequest %s to hold the shared grant of %s for scope %q", c.holderKey, c.conn, normalizedScope(btr.Spec.Scope))
	}
	r.emitRevocationEvents(btr, c.revocations)
	if !equality.Semantic.DeepEqual(original.Status, btr.Status) {
		err = r.writeStatus(ctx, original, btr)
	}
	r.Metrics.observe(btr)
	return c.requeue(btr.UID, now), err
}

// consume ensures the holder, copies its token and releases the request's own grants.
func (r *BankTokenRequestReconciler) consume(ctx context.Context, resolved resolution, now time.Time) (consumption, error) {
	btr, conn := resolved.request, resolved.connection
	key, _ := r.sharedGrantHolderKey(btr) // a resolved connection: always known
	c := consumption{conn: conn, holderKey: key, pollHolder: r.Shard.Enabled()}
	if c.problem = checkSpec(btr); c.problem != nil {
		return c, nil
	}
	g := &gathered{Request: btr, Connection: conn}
	if err := r.readOwnedSecrets(ctx, btr, g); err != nil {
		if errors.As(err, &c.problem) {
			return c, nil
		}
		return c, err
	}
	if c.problem = checkCertificateDelivery(btr, conn); c.problem != nil {
		c.held, c.heldFrom = g.Held, sharedCopyOf(g.OutputSecret)
		return c, r.withdrawRefusedPrivateKey(ctx, btr, g, c.problem)
	}
	c.held, c.heldFrom = g.Held, sharedCopyOf(g.OutputSecret)
	var err error
	if c.holder, c.created, c.conflict, err = r.ensureSharedGrantHolder(ctx, key, conn, btr.Spec.Scope); err != nil || c.conflict != "" {
		return c, err
	}
	if err := r.copySharedToken(ctx, btr, g, &c, now); err != nil {
		return c, err
	}
	if c.heldFrom == "" {
		return c, nil // its own token stays until the shared one replaces it
	}
	return c, r.releaseOwnGrants(ctx, resolved, g, &c, now)
}

// sharedCopyOf is the holder whose token an output Secret holds; "" for none.
func sharedCopyOf(secret *corev1.Secret) string {
	if secret == nil || len(secret.Data) == 0 {
		return ""
	}
	return secret.Annotations[annotationSharedGrant]
}

// copySharedToken writes the holder's token into the consumer's output Secret, keys as
// they are (access_token, token_type, expires_at, scope, authorization and, for a
// certificate-bound token, its thumbprint). A valid token the request holds is replaced
// only by a valid one; a suspended request takes no new token.
func (r *BankTokenRequestReconciler) copySharedToken(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, c *consumption, now time.Time) error {
	holder := c.holder
	if holder == nil || !holder.DeletionTimestamp.IsZero() || btr.Spec.Suspend {
		return nil
	}
	secret, err := r.getSecret(ctx, holder.Namespace, outputSecretName(holder))
	if err != nil || secret == nil || !isControlledBy(secret, holder) {
		return err
	}
	token, _ := readHeldToken(secret)
	if token == nil || (!token.validAt(now) && c.held.validAt(now)) {
		return nil
	}
	// The holder's Secret carries the certificate its token is bound to; the consumer keeps
	// the parts it asked for, copied from the same read as the token.
	data := copiedCertificateDelivery(secret.Data, btr.Spec.CertificateDelivery)
	token.RequestHash = sharedCopyHashPrefix + token.RequestHash
	annotations := map[string]string{
		annotationIssuedAt:    formatTime(token.IssuedAt),
		annotationInputHash:   token.RequestHash,
		annotationChecksum:    dataChecksum(data),
		annotationSharedGrant: c.holderKey.String(),
	}
	if err := r.writeOutputSecret(ctx, btr, g, data, annotations); err != nil {
		return err
	}
	c.held, c.heldFrom = token, c.holderKey.String()
	return nil
}

// releaseOwnGrants revokes the grants the request held of its own once the shared token
// has replaced theirs in its output Secret, as a dropped chain is (revocationsAfter): its
// workloads may use the replaced token for the propagation delay, so the chains wait that
// long in the revocation queue, counted from after the write. Due grants are revoked within
// a token-call slot; the finalizer goes when nothing is left.
func (r *BankTokenRequestReconciler) releaseOwnGrants(ctx context.Context, resolved resolution, g *gathered, c *consumption, now time.Time) error {
	btr := resolved.request
	held := g.Refresh
	if held.holdsChains() {
		replacedAt := wholeSecondAfter(r.Clock.Now())
		queue, givenUp := boundedQueue(r.revocationsAfter(g, refreshChains{}, true, replacedAt))
		if givenUp > 0 {
			logf.FromContext(ctx).Info("too many grants waiting to be revoked; the oldest stay live at the bank until they expire", "givenUp", givenUp)
		}
		if err := r.writeRefreshState(ctx, btr, &held, refreshState{secret: held.secret, Revocations: queue}); err != nil {
			return err
		}
		g.Refresh = held
	}
	if due := earliestDue(held.Revocations); !due.IsZero() && !now.Before(due) {
		w := withdrawal{}
		pending, err := r.revokeDropped(ctx, resolved, g, now, &w)
		if c.revocations, c.busy = w.revocations, w.busy; err != nil || w.busy {
			return err
		}
		if err := r.writeRefreshState(ctx, btr, &held, refreshState{secret: held.secret, Revocations: pending}); err != nil {
			return err
		}
	}
	c.revocations.next = earliestDue(held.Revocations)
	return r.releaseFinalizer(ctx, btr, held)
}

// wholeSecondAfter is t rounded up to a whole second: the revocation queue and the
// operator's annotations keep whole seconds, and a delay counted from a time rounded down
// would end early.
func wholeSecondAfter(t time.Time) time.Time {
	if rounded := t.Truncate(time.Second); !rounded.Equal(t) {
		return rounded.Add(time.Second)
	}
	return t
}
