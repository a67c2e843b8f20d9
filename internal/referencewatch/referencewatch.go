// Package referencewatch watches the Secrets and ConfigMaps that requests read (credentials,
// client certificates, CA bundles), keeping only their names and resourceVersions (see
// nameVersions), and only in namespaces that hold at least one request. A cluster-wide watch
// would see every Secret in the cluster, ten thousand of them in a large one, although a few
// namespaces use the operator.
//
// Invariants:
//   - The set of namespaces follows the requests' informer: a namespace's watches start with
//     its first request and stop with its last. The namespaces Config.AlwaysWatched names
//     are watched from the start to the end, requests or not.
//   - Every change to a watched object reaches the requests that read it, including the
//     changes a relist reveals after a watch could not resume; the first list's at low
//     priority.
//   - A namespace's store answers only once its first list has arrived: until then an
//     object's version is unknown, never absent, and its readers must read the object.
//   - The Secrets the selector leaves out (the operator's own, which the manager's
//     label-selected cache holds) are not held here, so no Secret is held twice.
//
// The package knows no request's fields: which objects a request reads is the caller's
// Referencing.
package referencewatch

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
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
)

// Config says what a Watch follows and whom it tells.
type Config struct {
	// Metadata lists and watches the Secrets' and ConfigMaps' metadata.
	Metadata metadata.Interface
	// Requests holds the informer of RequestType, the objects that reference: its adds and
	// deletes decide which namespaces are watched.
	Requests    ctrlcache.Informers
	RequestType client.Object
	// SecretSelector, when not empty, narrows the Secret watches.
	SecretSelector string
	// Referencing lists the requests in namespace that read the object kind/name (kind
	// "Secret" or "ConfigMap").
	Referencing func(ctx context.Context, kind, namespace, name string) []reconcile.Request
	// AlwaysWatched are namespaces watched whether or not they hold requests: those where
	// requests read objects through another object (a ClusterBankConnection's Secrets, in
	// the operator's cluster connection namespace).
	AlwaysWatched []string
}

// Watch is a controller source: its events enqueue the requests that reference the changed
// object, found through Config.Referencing. It is also asked what exists (SecretKnownAbsent)
// and at which version (VersionOf).
type Watch struct {
	config Config

	mu         sync.Mutex
	ctx        context.Context
	queue      workqueue.TypedRateLimitingInterface[reconcile.Request]
	namespaces map[string]*namespaceReferences
	// requestsSeen says when the requests the informer listed first have all been tracked.
	requestsSeen toolscache.ResourceEventHandlerRegistration
}

// namespaceReferences is one namespace's watches and the requests keeping them.
type namespaceReferences struct {
	requests sets.Set[string]
	// always: the namespace is in Config.AlwaysWatched, and stays watched without requests.
	always     bool
	cancel     context.CancelFunc
	secrets    *nameVersions
	configMaps *nameVersions
}

var (
	secretsResource    = corev1.SchemeGroupVersion.WithResource("secrets")
	configMapsResource = corev1.SchemeGroupVersion.WithResource("configmaps")
)

// New is a Watch of the objects config's requests reference; it starts with Start.
func New(config Config) *Watch {
	return &Watch{config: config, namespaces: map[string]*namespaceReferences{}}
}

// Start follows the requests' informer. Requests already in the cache arrive as adds,
// so every namespace in use has its watches before the first Secret event matters.
func (w *Watch) Start(ctx context.Context, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	w.mu.Lock()
	w.ctx, w.queue = ctx, queue
	for _, namespace := range w.config.AlwaysWatched {
		if _, ok := w.namespaces[namespace]; !ok {
			w.namespaces[namespace] = w.watchNamespace(namespace)
		}
		w.namespaces[namespace].always = true
	}
	w.mu.Unlock()
	informer, err := w.config.Requests.GetInformer(ctx, w.config.RequestType)
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
// resources from metadata instead of reading every Secret.
func (w *Watch) WaitForSync(ctx context.Context) error {
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
func (w *Watch) synced() bool {
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

func (w *Watch) track(namespace, name string) {
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

func (w *Watch) untrack(namespace, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	refs, ok := w.namespaces[namespace]
	if !ok {
		return
	}
	refs.requests.Delete(name)
	if refs.requests.Len() == 0 && !refs.always {
		refs.cancel()
		delete(w.namespaces, namespace)
		logf.FromContext(w.ctx).V(1).Info("stopped watching referenced objects", "namespace", namespace)
	}
}

// watchNamespace starts the namespace's Secret and ConfigMap watches. Called with w.mu held.
func (w *Watch) watchNamespace(namespace string) *namespaceReferences {
	ctx, cancel := context.WithCancel(w.ctx)
	refs := &namespaceReferences{
		requests: sets.New[string](),
		cancel:   cancel,
		secrets: watchNameVersions(ctx, w.config.Metadata, secretsResource, namespace, w.config.SecretSelector,
			w.enqueueReferencing("Secret", namespace)),
		configMaps: watchNameVersions(ctx, w.config.Metadata, configMapsResource, namespace, "",
			w.enqueueReferencing("ConfigMap", namespace)),
	}
	logf.FromContext(w.ctx).V(1).Info("watching referenced objects", "namespace", namespace)
	return refs
}

// enqueueReferencing turns any change to a Secret or ConfigMap into the requests that read
// it. The initial list counts too: a Secret created between a request's first reconcile and
// the start of its namespace's watch is announced only by that list. Its names go in at low
// priority, like the initial list of the requests themselves, so that after a start they do
// not overtake the requests that are due.
func (w *Watch) enqueueReferencing(kind, namespace string) func(name string, initial bool) {
	return func(name string, initial bool) {
		requests := w.config.Referencing(w.ctx, kind, namespace, name)
		if pq, ok := w.queue.(priorityqueue.PriorityQueue[reconcile.Request]); ok && initial {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(handler.LowPriority)}, requests...)
			return
		}
		for _, req := range requests {
			w.queue.Add(req)
		}
	}
}

// VersionOf is the resourceVersion of a referenced Secret or ConfigMap as the namespace's
// watch last saw it; false when the watch has not synced or holds no object of that name.
func (w *Watch) VersionOf(kind, namespace, name string) (string, bool) {
	store := w.syncedStore(kind, namespace)
	if store == nil {
		return "", false
	}
	return store.Version(name)
}

// syncedStore is the namespace's store of kind ("Secret" or "ConfigMap"); nil when the
// namespace is not watched or its watch has not listed yet.
func (w *Watch) syncedStore(kind, namespace string) *nameVersions {
	w.mu.Lock()
	refs, ok := w.namespaces[namespace]
	w.mu.Unlock()
	if !ok {
		return nil
	}
	store := refs.store(kind)
	if !store.HasSynced() {
		return nil
	}
	return store
}

// store is the namespace's store of kind, "Secret" or "ConfigMap".
func (refs *namespaceReferences) store(kind string) *nameVersions {
	if kind == "ConfigMap" {
		return refs.configMaps
	}
	return refs.secrets
}

// SecretKnownAbsent reports whether the namespace's Secret watch has synced and holds no
// Secret of that name that the operator does not own.
func (w *Watch) SecretKnownAbsent(namespace, name string) bool {
	store := w.syncedStore("Secret", namespace)
	return store != nil && !store.Has(name)
}

// WatchedNamespaces lists the namespaces being watched, for tests.
func (w *Watch) WatchedNamespaces() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return sets.List(sets.KeySet(w.namespaces))
}
