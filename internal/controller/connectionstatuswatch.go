package controller

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// What brings a connection's status back: a change of its spec (or its creation), any
// change of a request that names it (its status says what the connection's counts and last
// failure are made of), and a change of a Secret or ConfigMap it reads, which the request
// reconciler's reference watch sees (in the namespaces it watches: the cluster connection
// namespace, and those that hold requests; elsewhere a connection whose credentials are not
// ready looks again every RefreshInterval).

// connectionStatusCoalesce delays a request's change on its way to its connection's status,
// so that a burst of request writes (a thousand renewals) makes one connection reconcile,
// and one read of its Secrets, per delay instead of one each.
const connectionStatusCoalesce = time.Second

// connectionChangeBuffer is the room for Secret changes not yet taken by the connection
// status controller; one dropped when it is full is made up for by the next request change.
const connectionChangeBuffer = 256

// SetupWithManager registers the connection status controller. It needs the request
// reconciler set up on the same manager: it lists requests through its index.
func (c *ConnectionStatusReconciler) SetupWithManager(mgr ctrl.Manager, opts controller.Options) error {
	changes := make(chan event.GenericEvent, connectionChangeBuffer)
	c.Requests.connectionChanges = changes
	specChanges := builder.WithPredicates(predicate.GenerationChangedPredicate{})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("bankconnectionstatus").
		Watches(&tokensv1alpha1.BankConnection{}, &handler.EnqueueRequestForObject{}, specChanges).
		Watches(&tokensv1alpha1.BankTokenRequest{}, c.connectionsOfRequests()).
		WatchesRawSource(source.Channel(changes, &handler.EnqueueRequestForObject{}))
	if c.Requests.servesClusterConnections() {
		b = b.Watches(&tokensv1alpha1.ClusterBankConnection{}, &handler.EnqueueRequestForObject{}, specChanges)
	}
	return b.WithOptions(opts).Complete(c)
}

// connectionsOfRequests enqueues, a little later (connectionStatusCoalesce), the
// connection a changed request names, and the one it named before.
func (c *ConnectionStatusReconciler) connectionsOfRequests() handler.EventHandler {
	enqueue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], obj client.Object) {
		if req, ok := c.connectionNamedBy(obj); ok {
			q.AddAfter(req, connectionStatusCoalesce)
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.ObjectOld)
			enqueue(q, e.ObjectNew)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object)
		},
		GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object)
		},
	}
}

// connectionNamedBy is the reconcile request of the connection obj names; false for an
// inline request, and for a ClusterBankConnection when the operator serves none.
func (c *ConnectionStatusReconciler) connectionNamedBy(obj client.Object) (reconcile.Request, bool) {
	btr, ok := obj.(*tokensv1alpha1.BankTokenRequest)
	if !ok || btr.Spec.ConnectionRef == nil {
		return reconcile.Request{}, false
	}
	ref := btr.Spec.ConnectionRef
	if ref.KindOrDefault() == tokensv1alpha1.KindClusterBankConnection {
		return reconcile.Request{NamespacedName: types.NamespacedName{Name: ref.Name}}, c.Requests.servesClusterConnections()
	}
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: btr.Namespace, Name: ref.Name}}, true
}

// notifyConnectionChange tells the connection status controller, when there is one, that
// something conn reads changed. It never blocks the reference watch.
func (r *BankTokenRequestReconciler) notifyConnectionChange(conn client.Object) {
	if r.connectionChanges == nil {
		return
	}
	select {
	case r.connectionChanges <- event.GenericEvent{Object: conn}:
	default:
	}
}
