package controller

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// requestMetrics are the per-request series the shipped alerts and dashboard read
// (config/prometheus, config/grafana): what the token is, where the request stands and when
// it is due. They are made at scrape time from the status of the requests in the manager's
// cache, as kube-state-metrics does, not kept between scrapes: gauges set on every reconcile
// held about 2.6 KB of series and label pairs per request, 130 MiB of heap at 50,000
// (docs/scaling.md), for values the cache holds anyway. A deleted request's series go with
// it from the cache.
//
// A request is exported once this process has reconciled it, with the provider label of
// that reconcile (a request naming a connection has its provider from the connection, which
// its cached spec does not hold), and no longer once it is forgotten (gone, or let go of by
// this shard): a standby replica, or a new leader before its first reconcile of a request,
// exports nothing for it, as when the reconciler set the gauges itself.
type requestMetrics struct {
	expiry, ready, state, renewal, failedAttempts *prometheus.Desc

	mu sync.Mutex
	// requests lists the cached requests (see cachedRequests); nil until the reconciler is
	// set up with a manager, and then nothing is exported.
	requests requestLister
	// providers holds the provider label of each request reconciled here.
	providers map[types.NamespacedName]string
}

// requestLister calls visit with each cached BankTokenRequest. The objects are the cache's
// own: visit reads them and keeps nothing of them past the scrape.
type requestLister func(ctx context.Context, visit func(*tokensv1alpha1.BankTokenRequest)) error

// requestListTimeout bounds a scrape's wait for a cache that is not synced yet; a scrape
// times out at Prometheus after 10 s by default.
const requestListTimeout = 5 * time.Second

func newRequestMetrics() *requestMetrics {
	perRequest := []string{"namespace", "name", "provider"}
	return &requestMetrics{
		expiry: prometheus.NewDesc("banktoken_token_expiry_timestamp_seconds",
			"When the token held in the output Secret expires, as a Unix timestamp.", perRequest, nil),
		ready: prometheus.NewDesc("banktoken_token_ready",
			"1 when the BankTokenRequest's Ready condition is True, 0 otherwise.", perRequest, nil),
		state: prometheus.NewDesc("banktoken_token_state",
			"1 for the BankTokenRequest's current state: Ready, RefreshFailing, Expired, Stalled, Suspended or Pending.",
			append(perRequest, "state"), nil),
		renewal: prometheus.NewDesc("banktoken_token_renewal_timestamp_seconds",
			"When the operator next renews the token (or retries after a failure), as a Unix timestamp; absent while none is planned (Stalled, Suspended).", perRequest, nil),
		failedAttempts: prometheus.NewDesc("banktoken_token_failed_attempts",
			"Consecutive failed attempts to obtain a token; 0 after a success.", perRequest, nil),
		providers: map[types.NamespacedName]string{},
	}
}

// readFrom sets what lists the requests whose series are made.
func (r *requestMetrics) readFrom(list requestLister) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = list
}

// observed notes that this process reconciled the request, under the given provider.
func (r *requestMetrics) observed(key types.NamespacedName, provider string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.providers[key] = provider
}

// forget stops exporting the request, gone or no longer this process's to reconcile.
func (r *requestMetrics) forget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.providers, key)
}

func (r *requestMetrics) providerOf(key types.NamespacedName) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	provider, seen := r.providers[key]
	return provider, seen
}

// Describe sends the five gauges' descriptions.
func (r *requestMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{r.expiry, r.ready, r.state, r.renewal, r.failedAttempts} {
		ch <- desc
	}
}

// Collect sends the series of every cached request reconciled here. Scrapes may run at
// once: each reads the cache and the provider labels under their own locks, and holds
// neither while it sends.
func (r *requestMetrics) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	list := r.requests
	r.mu.Unlock()
	if list == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestListTimeout)
	defer cancel()
	err := list(ctx, func(btr *tokensv1alpha1.BankTokenRequest) {
		if provider, seen := r.providerOf(types.NamespacedName{Namespace: btr.Namespace, Name: btr.Name}); seen {
			r.collect(ch, btr, provider)
		}
	})
	if err != nil {
		// An error in the scrape would make controller-runtime's handler fail all of it;
		// without these series the alerts see requests not yet reconciled.
		logf.Log.WithName("metrics").Error(err, "the BankTokenRequests' series are left out of this scrape")
	}
}

// collect sends one request's series, from its status as the reconciler last wrote it.
func (r *requestMetrics) collect(ch chan<- prometheus.Metric, btr *tokensv1alpha1.BankTokenRequest, provider string) {
	status := &btr.Status
	state := tokensv1alpha1.TokenState(status)
	s := newRequestSeries(btr.Namespace, btr.Name, provider, state)
	ready := 0.0
	if meta.IsStatusConditionTrue(status.Conditions, tokensv1alpha1.ConditionReady) {
		ready = 1
	}
	ch <- s.add(r.ready, ready, false)
	// No token held (access taken away): an old expiry would still look like one.
	if status.ExpiresAt != nil {
		ch <- s.add(r.expiry, float64(status.ExpiresAt.Unix()), false)
	}
	ch <- s.add(r.state, 1, true)
	ch <- s.add(r.failedAttempts, float64(status.FailedAttempts), false)
	// A Stalled resource keeps an old renewal time in status; none is planned, so none is exported.
	if status.RenewalTime != nil && state != tokensv1alpha1.TokenStateStalled {
		ch <- s.add(r.renewal, float64(status.RenewalTime.Unix()), false)
	}
}
