package referencewatch

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	toolscache "k8s.io/client-go/tools/cache"
)

// nameVersions is a reflector's store that keeps only the name and resourceVersion of each
// object in one namespace, and reports every name whose object appeared, changed or went.
//
// It is what a Watch needs of a namespace's Secrets and ConfigMaps: whether an object
// of a name exists, and which changed, across relists too. An informer would also keep each
// object's metadata, trimmed or not, and that is most of the cost of ten thousand unrelated
// Secrets beside the requests: about 1.2 KiB of the manager's memory each with an informer,
// about 0.2 KiB here (make bench, memory run).
type nameVersions struct {
	// onChange is called, outside the lock, with each name whose object was added, updated
	// or deleted, or differs after a relist; initial is true for the names of the first list.
	onChange func(name string, initial bool)

	mu       sync.RWMutex
	versions map[string]string
	synced   bool
}

var _ toolscache.TransformingStore = &nameVersions{}

func newNameVersions(onChange func(name string, initial bool)) *nameVersions {
	return &nameVersions{onChange: onChange, versions: map[string]string{}}
}

// watchNameVersions runs a reflector of the metadata of resource in namespace into a new
// nameVersions until ctx ends. labelSelector, when not empty, narrows the watch.
func watchNameVersions(ctx context.Context, client metadata.Interface, resource schema.GroupVersionResource,
	namespace, labelSelector string, onChange func(name string, initial bool)) *nameVersions {
	store := newNameVersions(onChange)
	resources := client.Resource(resource).Namespace(namespace)
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, options metav1.ListOptions) (runtime.Object, error) {
			options.LabelSelector = labelSelector
			return resources.List(ctx, options)
		},
		WatchFuncWithContext: func(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
			options.LabelSelector = labelSelector
			return resources.Watch(ctx, options)
		},
	}
	reflector := toolscache.NewReflectorWithOptions(toolscache.ToListWatcherWithWatchListSemantics(lw, client),
		&metav1.PartialObjectMetadata{}, store, toolscache.ReflectorOptions{
			Name:            "referenced " + resource.Resource + " in " + namespace,
			TypeDescription: resource.Resource + " metadata",
		})
	go reflector.RunWithContext(ctx)
	return store
}

// Add records a new object, or one seen again on a watch's restart.
func (s *nameVersions) Add(obj any) error { return s.set(obj) }

// Update records a changed object.
func (s *nameVersions) Update(obj any) error { return s.set(obj) }

func (s *nameVersions) set(obj any) error {
	o, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	name, version := o.GetName(), o.GetResourceVersion()
	s.mu.Lock()
	old, had := s.versions[name]
	changed := !had || old != version
	s.versions[name] = version
	s.mu.Unlock()
	if changed {
		s.onChange(name, false)
	}
	return nil
}

// Delete forgets an object.
func (s *nameVersions) Delete(obj any) error {
	if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	o, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	name := o.GetName()
	s.mu.Lock()
	_, had := s.versions[name]
	delete(s.versions, name)
	s.mu.Unlock()
	if had {
		s.onChange(name, false)
	}
	return nil
}

// Replace takes a full list, the first or one after a watch could not resume. Every name that
// is new, changed or missing from it is reported: those are the events the gap hid.
func (s *nameVersions) Replace(list []any, _ string) error {
	versions := make(map[string]string, len(list))
	for _, obj := range list {
		o, err := meta.Accessor(obj)
		if err != nil {
			return err
		}
		versions[o.GetName()] = o.GetResourceVersion()
	}
	var changed []string
	s.mu.Lock()
	initial := !s.synced
	for name, version := range versions {
		if old, had := s.versions[name]; !had || old != version {
			changed = append(changed, name)
		}
	}
	for name := range s.versions {
		if _, kept := versions[name]; !kept {
			changed = append(changed, name)
		}
	}
	s.versions, s.synced = versions, true
	s.mu.Unlock()
	for _, name := range changed {
		s.onChange(name, initial)
	}
	return nil
}

// Resync has nothing to do: nothing is replayed on a timer.
func (s *nameVersions) Resync() error { return nil }

// Transformer reduces each object of the initial watch-list stream, which the reflector
// holds all together until the stream ends, to the two fields kept.
func (s *nameVersions) Transformer() toolscache.TransformFunc {
	return func(obj any) (any, error) {
		o, err := meta.Accessor(obj)
		if err != nil {
			return nil, err
		}
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
			Namespace: o.GetNamespace(), Name: o.GetName(), ResourceVersion: o.GetResourceVersion(),
		}}, nil
	}
}

// HasSynced reports whether the first full list has arrived.
func (s *nameVersions) HasSynced() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.synced
}

// Has reports whether an object of the name exists, as far as the watch has seen.
func (s *nameVersions) Has(name string) bool {
	_, ok := s.Version(name)
	return ok
}

// Version is the resourceVersion of the object of the name, as far as the watch has seen;
// false when there is none.
func (s *nameVersions) Version(name string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	version, ok := s.versions[name]
	return version, ok
}
