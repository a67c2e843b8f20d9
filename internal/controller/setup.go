package controller

import (
	"context"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/metadata"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/referencewatch"
	"github.com/banktoken/bank-token-operator/internal/tokencalls"
)

// referencedObjectsIndex indexes inline BankTokenRequests, BankConnections and
// ClusterBankConnections by the Secrets and ConfigMaps they read, as "Secret/<name>" and
// "ConfigMap/<name>", so that a change to one reaches exactly the requests that use it
// (see requestsReferencing).
const referencedObjectsIndex = ".spec.referencedObjects"

// referencedObjects are the objects an inline request reads; one that names a connection
// reads its connection's (connectionReferences).
func referencedObjects(obj client.Object) []string {
	btr, ok := obj.(*tokensv1alpha1.BankTokenRequest)
	if !ok || btr.Spec.ConnectionRef != nil {
		return nil
	}
	return bankClientReferences(&btr.Spec.BankClient)
}

// bankClientReferences are the Secrets and ConfigMaps a bank client reads, as
// "<kind>/<name>".
func bankClientReferences(bc *tokensv1alpha1.BankClient) []string {
	refs := []string{"Secret/" + bc.CredentialsSecretRef.Name}
	if assertion := bc.ClientAssertion; assertion != nil {
		refs = append(refs, "Secret/"+assertion.PrivateKeySecretRef.Name)
	}
	if tls := bc.TLS; tls != nil {
		if ca := tls.CABundleRef; ca != nil {
			kind := ca.Kind
			if kind == "" {
				kind = "ConfigMap"
			}
			refs = append(refs, kind+"/"+ca.Name)
		}
		if cc := tls.ClientCertificateSecretRef; cc != nil {
			refs = append(refs, "Secret/"+cc.Name)
		}
	}
	return refs
}

// SetupWithManager registers the controller. Secrets and ConfigMaps are watched as metadata
// only, and narrowly: the Secrets the operator owns through the manager's label-selected
// cache, the objects requests reference only in namespaces that hold requests (and in the
// cluster connection namespace, where ClusterBankConnections' Secrets are). The operator's
// memory follows its own resources, not the cluster's Secrets.
func (r *BankTokenRequestReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager, opts controller.Options) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &tokensv1alpha1.BankTokenRequest{}, referencedObjectsIndex, referencedObjects); err != nil {
		return err
	}
	if err := r.indexConnections(ctx, mgr); err != nil {
		return err
	}
	if err := r.indexSharedGrants(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	// The per-request series are read from the requests this manager caches (in a shard, its own).
	r.Metrics.readRequestsFrom(mgr.GetCache())
	metadataClient, err := metadata.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return err
	}
	if opts.RateLimiter == nil {
		opts.RateLimiter = retryRateLimiter()
	}
	if r.TokenCallsPerNamespace == 0 {
		r.TokenCallsPerNamespace = tokencalls.DefaultPerNamespace(opts.MaxConcurrentReconciles)
	}
	if r.TokenCallReserve < 0 {
		r.TokenCallReserve = tokencalls.DefaultReserve(opts.MaxConcurrentReconciles)
	}
	tokenCallWake := make(chan event.GenericEvent, tokenCallWakeups)
	r.tokenCalls = tokencalls.New(opts.MaxConcurrentReconciles, r.TokenCallsPerNamespace, r.TokenCallReserve, tokenCallWake)
	r.references = referencewatch.New(referencewatch.Config{
		Metadata: metadataClient, Requests: mgr.GetCache(), RequestType: &tokensv1alpha1.BankTokenRequest{},
		// Owned Secrets are left out: the manager's cache holds them, by that label.
		SecretSelector: "!" + tokensv1alpha1.SecretRoleLabel,
		Referencing:    r.requestsReferencing(mgr.GetCache()),
		AlwaysWatched:  r.alwaysWatchedNamespaces(),
	})
	r.ownedSecrets = mgr.GetCache()
	// The resources and the Secrets they own are watched as For and Owns would, with the
	// resources' own handler so that what is due goes first after a start (see dueFirst).
	b := ctrl.NewControllerManagedBy(mgr).
		Named("banktokenrequest").
		Watches(&tokensv1alpha1.BankTokenRequest{}, dueFirst(r.Clock), builder.WithPredicates(predicate.Or(
			// Our own status writes change neither; spec edits and the refresh annotation do, and
			// in a shard, the sharder's drain label.
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, r.drained()))).
		Watches(&corev1.Secret{},
			handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &tokensv1alpha1.BankTokenRequest{}, handler.OnlyControllerOwner()),
			builder.OnlyMetadata, builder.WithPredicates(r.ownWrites.predicate())).
		WatchesRawSource(r.references).
		WatchesRawSource(source.Channel(tokenCallWake, &handler.EnqueueRequestForObject{}))
	b = r.watchSharedGrants(b, mgr.GetCache())
	return r.watchConnections(b, mgr.GetCache()).WithOptions(opts).Complete(r)
}

// alwaysWatchedNamespaces are the namespaces whose referenced objects are watched whether
// or not they hold requests: the cluster connection namespace.
func (r *BankTokenRequestReconciler) alwaysWatchedNamespaces() []string {
	if !r.servesClusterConnections() {
		return nil
	}
	return []string{r.ClusterConnectionNamespace}
}

// StripMetadataForCache keeps only what the watches need of the objects the manager's cache
// holds as metadata (the Secrets the operator owns): identity, version and owners. Labels,
// annotations (kubectl's last-applied-configuration can be large) and managed fields are
// dropped.
func StripMetadataForCache(obj any) (any, error) {
	switch o := obj.(type) {
	case *metav1.PartialObjectMetadata:
		o.ManagedFields = nil
		o.Annotations = nil
		o.Labels = nil
		return o, nil
	case metav1.Object:
		o.SetManagedFields(nil)
		return o, nil
	}
	return obj, nil
}

// retryRateLimiter paces the retries of reconciles that returned an error (the apiserver
// refused or could not be reached; a bank's failures are requeued by the reconciler's own
// backoff). controller-runtime's default grows each item's delay to 16 minutes: after an
// apiserver outage, a token due for renewal would wait long after the apiserver is back
// (make chaos measured 30 s, and a token with a minute left expired). Capped at 5 s per
// item, and at 50 retries a second overall, so that thousands of resources do not stampede
// a recovering apiserver.
func retryRateLimiter() workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](100*time.Millisecond, 5*time.Second),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(50), 200)},
	)
}

// ownedSecretMetadata is the shape in which the manager's cache holds the owned Secrets.
func ownedSecretMetadata() *metav1.PartialObjectMetadata {
	secret := &metav1.PartialObjectMetadata{}
	secret.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return secret
}
