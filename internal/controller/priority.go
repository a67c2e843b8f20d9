package controller

import (
	"context"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Due first. After a start (a rolling upgrade, a drain, a new leader) the informer's initial
// list puts every resource in the queue at once. controller-runtime's priority queue takes
// those at low priority, which is right for the thousands with nothing to do, and wrong for
// the few whose renewal fell due while no operator ran: they would wait behind all the
// others. dueFirst enqueues those at normal priority, ahead of the rest of the list.

// dueSoonWindow: a resource whose renewal or expiry comes within it counts as due at start.
const dueSoonWindow = time.Minute

// priorityNormal is the priority of everything but the initial list's resources that have
// nothing due. Reconciles requeue at it, so that a renewal coming due later never waits
// behind low-priority work.
const priorityNormal = 0

// dueFirst is the BankTokenRequests' event handler: EnqueueRequestForObject's, except that
// the initial list's resources go in at low priority only when nothing of theirs is due
// within dueSoonWindow.
func dueFirst(clk clock.PassiveClock) handler.EventHandler {
	enqueue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], obj client.Object) {
		q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			pq, isPriorityQueue := q.(priorityqueue.PriorityQueue[reconcile.Request])
			btr, isRequest := e.Object.(*tokensv1alpha1.BankTokenRequest)
			if !e.IsInInitialList || !isPriorityQueue || !isRequest {
				enqueue(q, e.Object)
				return
			}
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(startPriority(btr, clk.Now()))},
				reconcile.Request{NamespacedName: client.ObjectKeyFromObject(btr)})
		},
		// Resyncs (an update to the same version) are taken at low priority by handler.Funcs.
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
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

// startPriority is the priority of a resource listed at start: low when status says its
// token is good and neither renewal nor expiry comes within dueSoonWindow; otherwise (due,
// failing, never issued, changed since) normal.
func startPriority(btr *tokensv1alpha1.BankTokenRequest, now time.Time) int {
	if btr.DeletionTimestamp.IsZero() && keptAndNotDue(btr, now.Add(dueSoonWindow)) {
		return handler.LowPriority
	}
	return priorityNormal
}
