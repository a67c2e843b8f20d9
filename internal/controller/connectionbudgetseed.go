package controller

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/callbudget"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Seeding after a start. A budget lives in memory; a new leader that started with an empty
// log would spend again, in its first interval, the calls its predecessor made in its last:
// twice the budget in one window at the bank. So before its first call, a connection's
// budget is charged with the calls its requests' status records (the last issue and the
// last failure of each), and a pause its status records is restored.

// seedSlack moves each recorded call to the end of its second: status keeps whole seconds,
// and a call counted early would leave the window early.
const seedSlack = time.Second

// seedBudgetFromCache seeds conn's budget from the requests that name it and from its own
// status, read from the manager's cache. A failed read leaves it unseeded, for the next
// call to try again.
func (r *BankTokenRequestReconciler) seedBudgetFromCache(ctx context.Context, conn *resolvedConnection, limits callbudget.Limits) {
	requests, err := listRequestsNaming(ctx, r.Client, conn.Kind, conn.Namespace, conn.Name)
	if err != nil {
		logf.FromContext(ctx).Error(err, "listing the requests of a connection to seed its call budget", "connection", conn.String())
		return
	}
	status, err := r.readConnectionStatus(ctx, conn)
	if err != nil {
		logf.FromContext(ctx).Error(err, "reading a connection's status to seed its call budget", "connection", conn.String())
		return
	}
	seedBudget(r.Budgets, budgetKey(conn), limits, requests, status, r.Clock.Now())
}

// readConnectionStatus reads conn's status from the cache; an empty one when it is gone.
func (r *BankTokenRequestReconciler) readConnectionStatus(ctx context.Context, conn *resolvedConnection) (tokensv1alpha1.BankConnectionStatus, error) {
	key := types.NamespacedName{Namespace: conn.Namespace, Name: conn.Name}
	if conn.Kind == tokensv1alpha1.KindClusterBankConnection {
		c := &tokensv1alpha1.ClusterBankConnection{}
		err := r.Client.Get(ctx, key, c)
		return c.Status, client.IgnoreNotFound(err)
	}
	c := &tokensv1alpha1.BankConnection{}
	err := r.Client.Get(ctx, key, c)
	return c.Status, client.IgnoreNotFound(err)
}

// seedBudget charges key's budget, once, with the calls requests' status records, and
// restores the pause status records. Both reconcilers seed: whichever reads first.
func seedBudget(budgets *callbudget.Budgets, key callbudget.Key, limits callbudget.Limits,
	requests []tokensv1alpha1.BankTokenRequest, status tokensv1alpha1.BankConnectionStatus, now time.Time) {
	calls := make([]time.Time, 0, len(requests))
	for i := range requests {
		for _, at := range []*metav1.Time{requests[i].Status.IssuedAt, requests[i].Status.LastFailureTime} {
			if at != nil {
				calls = append(calls, at.Add(seedSlack))
			}
		}
	}
	if !budgets.Seed(key, limits, calls, now) {
		return
	}
	if budget := status.Budget; budget != nil && budget.PausedUntil != nil && budget.PausedUntil.After(now) {
		// What the bank answered is not recorded; a pause is only ever a rate limit's.
		budgets.Pause(key, budget.PausedUntil.Time, providers.ReasonRateLimited, now)
	}
}

// listRequestsNaming lists, from the cache's index, the requests that name the connection
// kind/name (a BankConnection's in its own namespace only).
func listRequestsNaming(ctx context.Context, reader client.Reader, kind, namespace, name string) ([]tokensv1alpha1.BankTokenRequest, error) {
	opts := []client.ListOption{client.MatchingFields{connectionIndex: connectionKey(kind, name)}}
	if kind == tokensv1alpha1.KindBankConnection {
		opts = append(opts, client.InNamespace(namespace))
	}
	list := &tokensv1alpha1.BankTokenRequestList{}
	if err := reader.List(ctx, list, opts...); err != nil {
		return nil, err
	}
	return list.Items, nil
}
