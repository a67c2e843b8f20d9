package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// What brings a request that names a connection back: a change to the connection's spec
// (or its creation or deletion), a change to the labels of its namespace (a
// ClusterBankConnection's selector may stop or start admitting it), and a change to a Secret
// or ConfigMap the connection reads (found through the reference watch, see
// requestsReferencing).

// connectionIndex indexes BankTokenRequests by the connection they name, as
// connectionKey's "<kind>/<name>".
const connectionIndex = ".spec.connectionRef"

func namedConnection(obj client.Object) []string {
	btr, ok := obj.(*tokensv1alpha1.BankTokenRequest)
	if !ok || btr.Spec.ConnectionRef == nil {
		return nil
	}
	return []string{connectionKey(btr.Spec.ConnectionRef.KindOrDefault(), btr.Spec.ConnectionRef.Name)}
}

// connectionReferences are the objects a BankConnection or ClusterBankConnection reads,
// for referencedObjectsIndex.
func connectionReferences(obj client.Object) []string {
	switch c := obj.(type) {
	case *tokensv1alpha1.BankConnection:
		return bankClientReferences(&c.Spec.BankClient)
	case *tokensv1alpha1.ClusterBankConnection:
		return bankClientReferences(&c.Spec.BankClient)
	}
	return nil
}

// servesClusterConnections says whether ClusterBankConnections (and the Namespaces their
// gates read) are watched: not by an operator that may not list cluster-scoped objects.
func (r *BankTokenRequestReconciler) servesClusterConnections() bool {
	return r.ClusterConnectionNamespace != ""
}

// indexConnections registers the indexes the connection watches look requests up by.
func (r *BankTokenRequestReconciler) indexConnections(ctx context.Context, mgr manager.Manager) error {
	indexer := mgr.GetFieldIndexer()
	if err := indexer.IndexField(ctx, &tokensv1alpha1.BankTokenRequest{}, connectionIndex, namedConnection); err != nil {
		return err
	}
	if err := indexer.IndexField(ctx, &tokensv1alpha1.BankConnection{}, referencedObjectsIndex, connectionReferences); err != nil {
		return err
	}
	if !r.servesClusterConnections() {
		return nil
	}
	return indexer.IndexField(ctx, &tokensv1alpha1.ClusterBankConnection{}, referencedObjectsIndex, connectionReferences)
}

// watchConnections adds the connection watches to the controller being built. Only spec
// changes of a connection matter (its status is others' to write); of a Namespace, only its
// labels, held as metadata.
func (r *BankTokenRequestReconciler) watchConnections(b *builder.Builder, cache client.Reader) *builder.Builder {
	specChanges := builder.WithPredicates(predicate.GenerationChangedPredicate{})
	b = b.Watches(&tokensv1alpha1.BankConnection{}, handler.EnqueueRequestsFromMapFunc(requestsNamingConnection(cache)), specChanges)
	if !r.servesClusterConnections() {
		return b
	}
	return b.
		Watches(&tokensv1alpha1.ClusterBankConnection{}, handler.EnqueueRequestsFromMapFunc(requestsNamingConnection(cache)), specChanges).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(requestsThroughClusterConnections(cache)),
			builder.OnlyMetadata, builder.WithPredicates(predicate.LabelChangedPredicate{}))
}

// requestsNamingConnection maps a connection to the requests that name it: a
// BankConnection's in its own namespace, a ClusterBankConnection's in every namespace.
func requestsNamingConnection(cache client.Reader) handler.MapFunc {
	return func(ctx context.Context, obj client.Object) []reconcile.Request {
		if _, cluster := obj.(*tokensv1alpha1.ClusterBankConnection); cluster {
			return listRequests(ctx, cache, client.MatchingFields{
				connectionIndex: connectionKey(tokensv1alpha1.KindClusterBankConnection, obj.GetName())})
		}
		return listRequests(ctx, cache, client.InNamespace(obj.GetNamespace()), client.MatchingFields{
			connectionIndex: connectionKey(tokensv1alpha1.KindBankConnection, obj.GetName())})
	}
}

// requestsThroughClusterConnections maps a Namespace to its requests that name a
// ClusterBankConnection, whose gates may judge its labels.
func requestsThroughClusterConnections(cache client.Reader) handler.MapFunc {
	return func(ctx context.Context, ns client.Object) []reconcile.Request {
		list := &tokensv1alpha1.BankTokenRequestList{}
		if err := cache.List(ctx, list, client.InNamespace(ns.GetName())); err != nil {
			logf.FromContext(ctx).Error(err, "listing BankTokenRequests of a namespace whose labels changed", "namespace", ns.GetName())
			return nil
		}
		var requests []reconcile.Request
		for _, item := range list.Items {
			if ref := item.Spec.ConnectionRef; ref != nil && ref.KindOrDefault() == tokensv1alpha1.KindClusterBankConnection {
				requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&item)})
			}
		}
		return requests
	}
}

// requestsReferencing lists, from the cache's indexes, the requests that read the object
// kind/name in namespace: what the reference watch enqueues when that object changes. They
// are the inline requests of namespace that name it, the requests of the namespace's
// BankConnections that name it, and, in the cluster connection namespace, the requests of
// every ClusterBankConnection that names it. The connections found are told too, for their
// status (see notifyConnectionChange).
func (r *BankTokenRequestReconciler) requestsReferencing(cache client.Reader) func(ctx context.Context, kind, namespace, name string) []reconcile.Request {
	return func(ctx context.Context, kind, namespace, name string) []reconcile.Request {
		reads := client.MatchingFields{referencedObjectsIndex: kind + "/" + name}
		requests := listRequests(ctx, cache, client.InNamespace(namespace), reads)
		connections := &tokensv1alpha1.BankConnectionList{}
		if err := cache.List(ctx, connections, client.InNamespace(namespace), reads); err != nil {
			logf.FromContext(ctx).Error(err, "listing BankConnections that reference an object", "kind", kind, "name", name)
		}
		for _, c := range connections.Items {
			r.notifyConnectionChange(&c)
			requests = append(requests, requestsNamingConnection(cache)(ctx, &c)...)
		}
		if !r.servesClusterConnections() || namespace != r.ClusterConnectionNamespace {
			return requests
		}
		clusterConnections := &tokensv1alpha1.ClusterBankConnectionList{}
		if err := cache.List(ctx, clusterConnections, reads); err != nil {
			logf.FromContext(ctx).Error(err, "listing ClusterBankConnections that reference an object", "kind", kind, "name", name)
		}
		for _, c := range clusterConnections.Items {
			r.notifyConnectionChange(&c)
			requests = append(requests, requestsNamingConnection(cache)(ctx, &c)...)
		}
		return requests
	}
}

// listRequests lists requests from the cache as reconcile requests; a failed list is
// logged and lists none (the next resync brings them back).
func listRequests(ctx context.Context, cache client.Reader, opts ...client.ListOption) []reconcile.Request {
	list := &tokensv1alpha1.BankTokenRequestList{}
	if err := cache.List(ctx, list, opts...); err != nil {
		logf.FromContext(ctx).Error(err, "listing BankTokenRequests to reconcile")
		return nil
	}
	requests := make([]reconcile.Request, 0, len(list.Items))
	for _, item := range list.Items {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&item)})
	}
	return requests
}
