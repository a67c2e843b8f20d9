package controller

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/metadata"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrlcache "sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// referenceWatch watches the Secrets and ConfigMaps BankTokenRequests read (credentials,
// client certificates, CA bundles), keeping only their names and resourceVersions (see
// nameVersions), and only in namespaces that hold at least one BankTokenRequest. A
// cluster-wide watch would see every Secret in the cluster, ten thousand of them in a large
// one, although a few namespaces use the operator. The set of namespaces follows the
// BankTokenRequest informer: a namespace's watches start with its first request and stop with
// its last.
//
// The Secrets the operator owns carry tokensv1alpha1's secret-role label and are left to the
// manager's own label-selected cache (see ManagerOptions), so no Secret is held twice.
//
// It is a controller source: its events enqueue the requests that reference the changed
// object, found through referencedObjectsIndex.
type referenceWatch struct {
	metadata metadata.Interface
	// requests is the manager's cache of BankTokenRequests: its informer drives the set of
	// namespaces, and its index maps an object to the requests that read it.
	requests ctrlcache.Cache

	mu         sync.Mutex
	ctx        context.Context
	queue      workqueue.TypedRateLimitingInterface[reconcile.Request]
	namespaces map[string]*namespaceReferences
	// requestsSeen says when the requests the informer listed first have all been tracked.
	requestsSeen toolscache.ResourceEventHandlerRegistration
}

// namespaceReferences is one namespace's watches and the requests keeping them. The
// watches are also asked what exists (secretKnownAbsent) and at which version (versionOf).
type namespaceReferences struct {
	requests   sets.Set[string]
	cancel     context.CancelFunc
	secrets    *nameVersions
	configMaps *nameVersions
}

var (
	secretsResource    = corev1.SchemeGroupVersion.WithResource("secrets")
	configMapsResource = corev1.SchemeGroupVersion.WithResource("configmaps")
)

func newReferenceWatch(metadataClient metadata.Interface, requests ctrlcache.Cache) *referenceWatch {
	return &referenceWatch{metadata: metadataClient, requests: requests, namespaces: map[string]*namespaceReferences{}}
}

// Start follows the BankTokenRequest informer. Requests already in the cache arrive as adds,
// so every namespace in use has its watches before the first Secret event matters.
func (w *referenceWatch) Start(ctx context.Context, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	w.mu.Lock()
	w.ctx, w.queue = ctx, queue
	w.mu.Unlock()
	informer, err := w.requests.GetInformer(ctx, &tokensv1alpha1.BankTokenRequest{})
	if err != nil {
		return err
	}
	registration, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if o, ok := obj.(client.Object); ok {
				w.track(o.GetNamespace(), o.GetName())
			}
		},
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			if o, ok := obj.(client.Object); ok {
				w.untrack(o.GetNamespace(), o.GetName())
			}
		},
	})
	w.mu.Lock()
	w.requestsSeen = registration
	w.mu.Unlock()
	// The namespaces' watches run under ctx and end with it.
	return err
}

// referencesSyncTimeout bounds how long the controller's start waits for the namespaces'
// watches: a namespace whose Secrets cannot be listed must not keep the operator from
// starting. Until its watch syncs, its requests are verified by reading their Secrets.
const referencesSyncTimeout = 30 * time.Second

// WaitForSync makes the controller's workers wait until every namespace in use has listed
// its Secrets and ConfigMaps, so that the first reconciles after a start can verify their
// resources from metadata (see verifyFromMetadata) instead of reading every Secret.
func (w *referenceWatch) WaitForSync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, referencesSyncTimeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
		return w.synced(), nil
	})
	if err != nil {
		logf.FromContext(w.ctx).Info("the watches of referenced objects have not all synced; reading Secrets until they have")
	}
	return nil
}

// synced reports whether the requests listed first are tracked and every namespace's
// watches have listed.
func (w *referenceWatch) synced() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.requestsSeen == nil || !w.requestsSeen.HasSynced() {
		return false
	}
	for _, refs := range w.namespaces {
		if !refs.secrets.HasSynced() || !refs.configMaps.HasSynced() {
			return false
		}
	}
	return true
}

func (w *referenceWatch) track(namespace, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	refs, ok := w.namespaces[namespace]
	if !ok {
		if w.ctx.Err() != nil {
			return
		}
		refs = w.watchNamespace(namespace)
		w.namespaces[namespace] = refs
	}
	refs.requests.Insert(name)
}

func (w *referenceWatch) untrack(namespace, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	refs, ok := w.namespaces[namespace]
	if !ok {
		return
	}
	refs.requests.Delete(name)
	if refs.requests.Len() == 0 {
		refs.cancel()
		delete(w.namespaces, namespace)
		logf.FromContext(w.ctx).V(1).Info("stopped watching referenced objects", "namespace", namespace)
	}
}

// watchNamespace starts the namespace's Secret and ConfigMap watches. Called with w.mu held.
func (w *referenceWatch) watchNamespace(namespace string) *namespaceReferences {
	ctx, cancel := context.WithCancel(w.ctx)
	refs := &namespaceReferences{
		requests: sets.New[string](),
		cancel:   cancel,
		// Owned Secrets are excluded: the manager's cache holds them, by that label.
		secrets: watchNameVersions(ctx, w.metadata, secretsResource, namespace, "!"+labelSecretRole,
			w.enqueueReferencing("Secret", namespace)),
		configMaps: watchNameVersions(ctx, w.metadata, configMapsResource, namespace, "",
			w.enqueueReferencing("ConfigMap", namespace)),
	}
	logf.FromContext(w.ctx).V(1).Info("watching referenced objects", "namespace", namespace)
	return refs
}

// enqueueReferencing turns any change to a Secret or ConfigMap into the requests that read
// it. The initial list counts too: a Secret created between a request's first reconcile and
// the start of its namespace's watch is announced only by that list. Its names go in at low
// priority, like the initial list of the requests themselves (see dueFirst), so that after a
// start they do not overtake the requests that are due.
func (w *referenceWatch) enqueueReferencing(kind, namespace string) func(name string, initial bool) {
	return func(name string, initial bool) {
		requests := requestsReferencing(w.ctx, w.requests, kind, namespace, name)
		if pq, ok := w.queue.(priorityqueue.PriorityQueue[reconcile.Request]); ok && initial {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(handler.LowPriority)}, requests...)
			return
		}
		for _, req := range requests {
			w.queue.Add(req)
		}
	}
}

// versionOf is the resourceVersion of a referenced Secret or ConfigMap as the namespace's
// watch last saw it; false when the watch has not synced or holds no object of that name.
func (w *referenceWatch) versionOf(kind, namespace, name string) (string, bool) {
	store := w.syncedStore(kind, namespace)
	if store == nil {
		return "", false
	}
	return store.Version(name)
}

// syncedStore is the namespace's store of kind ("Secret" or "ConfigMap"); nil when the
// namespace is not watched or its watch has not listed yet.
func (w *referenceWatch) syncedStore(kind, namespace string) *nameVersions {
	w.mu.Lock()
	refs, ok := w.namespaces[namespace]
	w.mu.Unlock()
	if !ok {
		return nil
	}
	store := refs.secrets
	if kind == "ConfigMap" {
		store = refs.configMaps
	}
	if !store.HasSynced() {
		return nil
	}
	return store
}

// secretKnownAbsent reports whether the namespace's Secret watch has synced and holds no
// Secret of that name that the operator does not own.
func (w *referenceWatch) secretKnownAbsent(namespace, name string) bool {
	store := w.syncedStore("Secret", namespace)
	return store != nil && !store.Has(name)
}

// watchedNamespaces lists the namespaces being watched, for tests.
func (w *referenceWatch) watchedNamespaces() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return sets.List(sets.KeySet(w.namespaces))
}

// requestsReferencing lists, from the cache's index, the requests in namespace that read the
// object kind/name.
func requestsReferencing(ctx context.Context, cache client.Reader, kind, namespace, name string) []reconcile.Request {
	list := &tokensv1alpha1.BankTokenRequestList{}
	if err := cache.List(ctx, list, client.InNamespace(namespace),
		client.MatchingFields{referencedObjectsIndex: kind + "/" + name}); err != nil {
		logf.FromContext(ctx).Error(err, "listing BankTokenRequests that reference an object", "kind", kind, "name", name)
		return nil
	}
	requests := make([]reconcile.Request, 0, len(list.Items))
	for _, item := range list.Items {
		requests = append(requests, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: item.Namespace, Name: item.Name}})
	}
	return requests
}
