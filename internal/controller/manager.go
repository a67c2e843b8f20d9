package controller

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ManagerOptions are the cache and client settings every manager of this operator runs
// with: Secret and ConfigMap data is never cached (the reconciler reads the few it needs
// from the apiserver), watched objects are held as trimmed metadata, and watchNamespaces,
// when given, confines the caches to those namespaces.
func ManagerOptions(scheme *runtime.Scheme, watchNamespaces []string) ctrl.Options {
	cacheOptions := cache.Options{DefaultTransform: StripMetadataForCache}
	if len(watchNamespaces) > 0 {
		cacheOptions.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range watchNamespaces {
			cacheOptions.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return ctrl.Options{
		Scheme: scheme,
		Cache:  cacheOptions,
		Client: client.Options{Cache: &client.CacheOptions{
			DisableFor: []client.Object{&corev1.Secret{}, &corev1.ConfigMap{}},
		}},
	}
}
