package controller

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// metricsLabel marks the specs of the per-request metrics (issue 29).
const metricsLabel = "metrics"

var _ = Describe("Per-request metrics", Label(metricsLabel), func() {
	It("exports each reconciled request's status from the manager's cache, and nothing of a deleted one", func() {
		registry := prometheus.NewRegistry()
		Expect(registry.Register(reconciler.Metrics.requests)).To(Succeed())
		ready := applyBank(newNamespace(), providers.Paymob)
		stalled := applyBank(newNamespace(), providers.Paymob, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.Scope = "admin" // not a scope the bank grants: invalid_scope, Stalled
		})
		eventuallyReady(ready, tokensv1alpha1.ReasonTokenIssued)
		Eventually(func() string { return stalledReason(stalled) }).ShouldNot(BeEmpty())

		status := getBTR(ready).Status
		Eventually(func() map[string]float64 { return gatheredSeriesOf(registry, ready) }).Should(Equal(map[string]float64{
			"banktoken_token_ready":                     1,
			"banktoken_token_state/Ready":               1,
			"banktoken_token_failed_attempts":           0,
			"banktoken_token_expiry_timestamp_seconds":  float64(status.ExpiresAt.Unix()),
			"banktoken_token_renewal_timestamp_seconds": float64(status.RenewalTime.Unix()),
		}))
		Eventually(func() map[string]float64 { return gatheredSeriesOf(registry, stalled) }).Should(Equal(map[string]float64{
			"banktoken_token_ready":           0,
			"banktoken_token_state/Stalled":   1,
			"banktoken_token_failed_attempts": float64(getBTR(stalled).Status.FailedAttempts),
		}))

		By("deleting them: their series go")
		for _, btr := range []*tokensv1alpha1.BankTokenRequest{ready, stalled} {
			recordStatus(btr.Namespace) // for the suite's leak check, which reads statuses seen
			Expect(k8sClient.Delete(suiteCtx, btr)).To(Succeed())
			Eventually(func() bool {
				return apierrors.IsNotFound(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(btr), &tokensv1alpha1.BankTokenRequest{}))
			}).Should(BeTrue())
			Eventually(func() map[string]float64 { return gatheredSeriesOf(registry, btr) }).Should(BeEmpty())
		}
	})
})

// gatheredSeriesOf is btr's series in registry, by metric name (and state), with the provider
// label checked.
func gatheredSeriesOf(registry *prometheus.Registry, btr *tokensv1alpha1.BankTokenRequest) map[string]float64 {
	GinkgoHelper()
	families, err := registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	series := map[string]float64{}
	for _, family := range families {
		for _, metric := range family.GetMetric() {
			labels := map[string]string{}
			for _, pair := range metric.GetLabel() {
				labels[pair.GetName()] = pair.GetValue()
			}
			if labels["namespace"] != btr.Namespace || labels["name"] != btr.Name {
				continue
			}
			Expect(labels["provider"]).To(Equal(string(providers.Paymob)))
			key := family.GetName()
			if state := labels["state"]; state != "" {
				key += "/" + state
			}
			series[key] = metric.GetGauge().GetValue()
		}
	}
	return series
}
