package controller

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/sharding"
)

// ManagerOptions are the cache and client settings every manager of this operator runs
// with: Secret and ConfigMap data is never cached (the reconciler reads the few it needs
// from the apiserver); the manager's cache holds only the Secrets the operator owns, found
// by their secret-role label, as trimmed metadata; Namespaces are held as metadata with
// their labels, which ClusterBankConnections' gates judge; watchNamespaces, when given,
// confines the caches to those namespaces. Referenced Secrets and ConfigMaps have their own
// watch (see package referencewatch).
//
// A shard of a ring (shard.Enabled) caches only the BankTokenRequests and owned Secrets
// labelled with its name: the objects the sharder assigned to it. Connections and Namespaces
// are read by every shard's requests and stay whole (see docs/scaling.md).
func ManagerOptions(scheme *runtime.Scheme, watchNamespaces []string, shard sharding.Shard) ctrl.Options {
	owned, err := labels.NewRequirement(tokensv1alpha1.SecretRoleLabel, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant, valid label key
	}
	ownedSecrets := labels.NewSelector().Add(*owned)
	if shard.Enabled() {
		requirements, _ := shard.Selector().Requirements()
		ownedSecrets = ownedSecrets.Add(requirements...)
	}
	cacheOptions := cache.Options{
		DefaultTransform: StripMetadataForCache,
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:    {Label: ownedSecrets},
			&corev1.Namespace{}: {Transform: namespaceLabelsOnly},
		},
	}
	if shard.Enabled() {
		cacheOptions.ByObject[&tokensv1alpha1.BankTokenRequest{}] = cache.ByObject{Label: shard.Selector()}
	}
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

// namespaceLabelsOnly keeps of a Namespace what the gates read: its name and labels
// (StripMetadataForCache, the default, drops labels).
func namespaceLabelsOnly(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
		o.SetAnnotations(nil)
	}
	return obj, nil
}
