package referencewatch

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// NewForTest is a Watch that runs no watches: its namespaces hold what Seed gives them, so
// that what reads a Watch can be tested without an apiserver.
func NewForTest() *Watch {
	return &Watch{ctx: context.Background(), namespaces: map[string]*namespaceReferences{}}
}

// Seed replaces what the namespace's store of kind ("Secret" or "ConfigMap") holds, as a
// full list would, and so marks it synced. The namespace's other store stays unsynced until
// it is seeded too.
func (w *Watch) Seed(kind, namespace string, objects ...metav1.Object) error {
	w.mu.Lock()
	refs, ok := w.namespaces[namespace]
	if !ok {
		ignore := func(string, bool) {}
		refs = &namespaceReferences{requests: sets.New[string](), cancel: func() {},
			secrets: newNameVersions(ignore), configMaps: newNameVersions(ignore)}
		w.namespaces[namespace] = refs
	}
	w.mu.Unlock()
	list := make([]any, 0, len(objects))
	for _, o := range objects {
		list = append(list, o)
	}
	return refs.store(kind).Replace(list, "")
}
