package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/sharding"
)

// A shard of a ring (kubernetes-controller-sharding; docs/scaling.md) works only on the
// requests labelled with its name, and lets go of one the sharder drains by removing the
// shard and drain labels, after which the sharder assigns it to another shard.
//
// Letting go is safe for the refresh token because it happens in a reconcile of the
// request: the workqueue never runs two reconciles of one request at once, so a renewal
// under way when the drain label arrives finishes first, writing its refresh-token Secret
// and status. The labels are then removed with the version this shard read (optimistic
// lock): should the cache not show this shard's last write yet, the patch conflicts and is
// retried, so the next shard reads a request whose status follows every write of this one.
// It reads the refresh-token Secret from the apiserver, where a call sent and never answered
// is marked in flight (refreshtoken.go), as after a leader's takeover: a refresh token is
// not sent twice across a move.

// letGoOf says whether btr is not this shard's to work on: assigned to another shard, or
// drained from this one, which it then acknowledges.
func (r *BankTokenRequestReconciler) letGoOf(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest) (bool, error) {
	switch {
	case !r.Shard.Enabled():
		return false, nil
	case !r.Shard.AssignedHere(btr):
		// The cache no longer shows it soon; a requeue of it may come before. Its metrics are
		// the other shard's now.
		r.Metrics.forget(btr.Namespace, btr.Name)
		return true, nil
	case !r.Shard.Draining(btr):
		return false, nil
	}
	logf.FromContext(ctx).V(1).Info("drained from this shard: letting go", "shard", r.Shard.Name)
	patched := btr.DeepCopy()
	delete(patched.Labels, r.Shard.ShardLabel())
	delete(patched.Labels, r.Shard.DrainLabel())
	if err := r.Client.Patch(ctx, patched, client.MergeFromWithOptions(btr, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return true, fmt.Errorf("letting go of the drained request: %w", err)
	}
	r.statusWrites.forget(btr.UID)
	r.Metrics.forget(btr.Namespace, btr.Name)
	return true, nil
}

// drained lets through the update that drains a request from this shard, which neither a
// spec nor an annotation change would: without it the shard would let go only at the
// request's next requeue, and the sharder's move would wait for it.
func (r *BankTokenRequestReconciler) drained() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return r.Shard.Draining(e.ObjectNew) && !r.Shard.Draining(e.ObjectOld)
		},
	}
}

// shardOwnedSecret keeps on an owned Secret the sharder's labels base carries (the
// operator's own labels replace the rest), and, in a shard, labels it with the shard's name:
// the shard's cache selects its owned Secrets by that label. The sharder assigns a
// controlled object to its controller's shard too (on create, and when it moves them); the
// label written here makes the Secret this shard's at once, even when the sharder's webhook
// (failure policy Ignore) missed it.
func shardOwnedSecret(secret, base *corev1.Secret, shard sharding.Shard) {
	if base != nil {
		for k, v := range base.Labels {
			if sharding.IsShardingLabel(k) {
				secret.Labels[k] = v
			}
		}
	}
	if shard.Enabled() {
		secret.Labels[shard.ShardLabel()] = shard.Name
	}
}
