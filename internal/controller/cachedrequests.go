package controller

import (
	"context"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// cachedRequests lists the BankTokenRequests of the manager's cache for the metrics, without
// copying them: a scrape at 50,000 requests must not copy 50,000 objects. A cache of one
// informer (all namespaces, or a shard's label selector) hands over its store; client-go's
// store is safe to read concurrently and returns the cached pointers. A cache of several
// (--watch-namespaces) has no single store: a List without the deep copy, which still
// copies each object's top-level struct into the list for the length of the scrape.
func cachedRequests(reader client.Reader) requestLister {
	return func(ctx context.Context, visit func(*tokensv1alpha1.BankTokenRequest)) error {
		if informers, ok := reader.(cache.Informers); ok {
			informer, err := informers.GetInformer(ctx, &tokensv1alpha1.BankTokenRequest{}, cache.BlockUntilSynced(false))
			if err != nil {
				return err
			}
			if informer, ok := informer.(interface{ GetStore() toolscache.Store }); ok {
				for _, obj := range informer.GetStore().List() {
					if btr, ok := obj.(*tokensv1alpha1.BankTokenRequest); ok {
						visit(btr)
					}
				}
				return nil
			}
		}
		var list tokensv1alpha1.BankTokenRequestList
		if err := reader.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
			return err
		}
		for i := range list.Items {
			visit(&list.Items[i])
		}
		return nil
	}
}
