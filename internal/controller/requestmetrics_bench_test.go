package controller

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// BenchmarkRequestMetrics prints what the per-request series cost at N requests (50,000,
// issue 29; or REQUEST_METRICS_N), all reconciled: the heap the metrics keep between
// scrapes per request (retained-B/request; the requests themselves, the cache's, are not
// counted), and one scrape (ns/op, B/op, allocs/op: a Gather of every series).
//
//	go test ./internal/controller -run '^$' -bench BenchmarkRequestMetrics -benchtime 3x
func BenchmarkRequestMetrics(b *testing.B) {
	n := 50000
	if v, err := strconv.Atoi(os.Getenv("REQUEST_METRICS_N")); err == nil {
		n = v
	}
	requests := readyRequests(n)
	before := heapAlloc()
	m, registry := registeredMetrics(b, &fakeRequestCache{requests: requests})
	for _, btr := range requests {
		m.observe(btr)
	}
	retained := int64(heapAlloc()) - int64(before)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := registry.Gather(); err != nil {
			b.Fatal(err)
		}
	}
	// After the loop: its start deletes the metrics reported before.
	b.ReportMetric(float64(retained)/float64(n), "retained-B/request")
	b.ReportMetric(float64(retained)/(1<<20), "retained-MiB")
	runtime.KeepAlive(m)
	runtime.KeepAlive(requests)
}

// readyRequests are n Ready requests in 100 namespaces, as a cache holds them.
func readyRequests(n int) []*tokensv1alpha1.BankTokenRequest {
	now := time.Unix(1_800_000_000, 0)
	requests := make([]*tokensv1alpha1.BankTokenRequest, n)
	for i := range requests {
		btr := metricsRequest(fmt.Sprintf("bench-%03d", i%100), fmt.Sprintf("token-%05d", i), "Paymob")
		btr.Status.ExpiresAt = &metav1.Time{Time: now.Add(24 * time.Hour)}
		btr.Status.RenewalTime = &metav1.Time{Time: now.Add(16 * time.Hour)}
		btr.Status.Conditions = []metav1.Condition{{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: tokensv1alpha1.ReasonTokenIssued, LastTransitionTime: metav1.Time{Time: now}}}
		requests[i] = btr
	}
	return requests
}

// heapAlloc is the heap in use after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	return stats.HeapAlloc
}
