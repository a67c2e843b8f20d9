package controller

import (
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// A connection's status, written by its own reconciler against a real apiserver: what its
// Secrets lack, who uses it, its calls and the last failed one.

var _ = Describe("Connection status", func() {
	It("says which Secret or key a connection's credentials lack until they are fixed, counts the requests that use it and those its gates refuse, its calls, and the last failed call", func() {
		ownClient(providers.Paymob)
		name := clusterConnectionName()
		first, second := newNamespace(), newNamespace()
		sandboxed := harness.NewSandboxRequest(bank, providers.Paymob, clusterConnectionNamespace, name)
		scope := sandboxed.Request.Spec.Scope
		Expect(k8sClient.Create(suiteCtx, &tokensv1alpha1.ClusterBankConnection{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: tokensv1alpha1.BankConnectionSpec{BankClient: sandboxed.Request.Spec.BankClient, AllowedScopes: strings.Fields(scope),
				AllowedNamespaces: &tokensv1alpha1.NamespaceGate{Names: []string{first, second}}}})).To(Succeed())
		DeferCleanup(recordConnectionStatus, name)
		eventuallyConnectionCondition(name, tokensv1alpha1.ConditionCredentialsReady, metav1.ConditionFalse,
			tokensv1alpha1.ReasonCredentialsSecretNotFound, clusterConnectionNamespace+"/"+name+"-credentials not found")
		Expect(connectionReadyGauge(name)).To(BeZero())

		lacking := sandboxed.Credentials.DeepCopy()
		delete(lacking.StringData, tokensv1alpha1.DefaultClientSecretKey)
		delete(lacking.Data, tokensv1alpha1.DefaultClientSecretKey)
		for _, o := range []client.Object{lacking, sandboxed.CABundle} {
			Expect(harness.CreateOrUpdate(suiteCtx, k8sClient, o)).To(Succeed())
		}
		eventuallyConnectionCondition(name, tokensv1alpha1.ConditionCredentialsReady, metav1.ConditionFalse,
			tokensv1alpha1.ReasonCredentialsKeyMissing, `no key "client_secret"`)
		Expect(harness.CreateOrUpdate(suiteCtx, k8sClient, sandboxed.Credentials)).To(Succeed())
		eventuallyConnectionCondition(name, tokensv1alpha1.ConditionCredentialsReady, metav1.ConditionTrue, tokensv1alpha1.ReasonCredentialsFound)
		eventuallyConnectionCondition(name, tokensv1alpha1.ConditionReady, metav1.ConditionTrue, tokensv1alpha1.ReasonConnectionReady)
		Eventually(func() float64 { return connectionReadyGauge(name) }).Should(Equal(1.0))

		inFirst := requestThrough(first, tokensv1alpha1.KindClusterBankConnection, name, scope)
		inSecond := requestThrough(second, tokensv1alpha1.KindClusterBankConnection, name, scope)
		refused := requestNamed(second, "admin", name, "admin")
		eventuallyReady(inFirst, tokensv1alpha1.ReasonTokenIssued)
		eventuallyReady(inSecond, tokensv1alpha1.ReasonTokenIssued)
		eventuallyRefused(refused, tokensv1alpha1.ReasonScopeNotAdmitted)
		wantNamespaces := []string{first, second}
		if second < first {
			wantNamespaces = []string{second, first}
		}
		Eventually(func(g Gomega) {
			status := clusterConnectionStatus(name)
			g.Expect(status.Requests).To(BeEquivalentTo(2))
			g.Expect(status.RefusedRequests).To(BeEquivalentTo(1))
			g.Expect(status.Namespaces).To(Equal(wantNamespaces))
			g.Expect(status.Budget.Calls).To(BeEquivalentTo(2))
			g.Expect(status.Budget.Limit).To(BeEquivalentTo(tokensv1alpha1.DefaultCallBudgetCalls))
			g.Expect(status.ObservedGeneration).To(BeEquivalentTo(1))
		}).Should(Succeed())

		bank.SetFault(providers.Paymob, sandbox.FaultServerError)
		DeferCleanup(bank.SetFault, providers.Paymob, sandbox.NoFault)
		requestRefresh(inFirst, time.Now().UTC().Format(time.RFC3339Nano))
		Eventually(func(g Gomega) {
			failure := clusterConnectionStatus(name).LastFailure
			g.Expect(failure).NotTo(BeNil())
			g.Expect(failure.Request).To(Equal(first + "/tokens"))
			g.Expect(failure.Reason).To(Equal(tokensv1alpha1.ReasonRefreshFailing))
			g.Expect(failure.Message).To(ContainSubstring("500"))
		}).Should(Succeed())
	})
})

// eventuallyConnectionCondition waits for the ClusterBankConnection name's condition.
func eventuallyConnectionCondition(name, conditionType string, status metav1.ConditionStatus, reason string, message ...string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		c := meta.FindStatusCondition(clusterConnectionStatus(name).Conditions, conditionType)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(status))
		g.Expect(c.Reason).To(Equal(reason))
		for _, m := range message {
			g.Expect(c.Message).To(ContainSubstring(m))
		}
	}).Should(Succeed())
}

// connectionReadyGauge is banktoken_connection_ready of the ClusterBankConnection name.
func connectionReadyGauge(name string) float64 {
	GinkgoHelper()
	m := &dto.Metric{}
	Expect(connectionStatus.Metrics.ready.WithLabelValues(tokensv1alpha1.KindClusterBankConnection, "", name).Write(m)).To(Succeed())
	return m.GetGauge().GetValue()
}

// recordConnectionStatus adds the ClusterBankConnection name's status to statusSeen, for
// the leak check: it carries the requests' failure messages.
func recordConnectionStatus(name string) {
	raw, err := json.Marshal(clusterConnectionStatus(name))
	Expect(err).NotTo(HaveOccurred())
	_, _ = statusSeen.Write(append(raw, '\n'))
}
