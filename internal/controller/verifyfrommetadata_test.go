package controller

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

var _ = Describe("Verifying the output Secret from its metadata", func() {
	It("reads no Secret while nothing is due, across resyncs and a restart, and still repairs a tampered Secret and acts on changed credentials at once", func() {
		ns := newNamespace()
		// RAKBANK with a client certificate and a CA bundle ConfigMap, Paymob with a refresh
		// token, a revocation endpoint and the finalizer, Banfico with neither.
		banks := []providers.Name{providers.RAKBank, providers.Paymob, providers.Banfico}
		requests := map[providers.Name]*tokensv1alpha1.BankTokenRequest{}
		for _, name := range banks {
			requests[name] = applyBank(ns, name)
		}
		for _, name := range banks {
			eventuallyReady(requests[name], tokensv1alpha1.ReasonTokenIssued)
			Eventually(func() *tokensv1alpha1.ObservedVersions { return getBTR(requests[name]).Status.Observed }).
				ShouldNot(BeNil(), "%s: status.observed", name)
		}
		callsBefore := map[providers.Name]int{}
		for _, name := range banks {
			callsBefore[name] = bank.Requests(name)
		}
		reads := writes.secretReads(ns)
		// The suite's manager resyncs every 4 s: each resource is reconciled at least once.
		Consistently(func() int { return writes.secretReads(ns) }).WithTimeout(resyncPeriod+2*time.Second).
			Should(Equal(reads), "Secret reads while nothing was due")

		restartManager()
		Consistently(func() int { return writes.secretReads(ns) }).WithTimeout(3*time.Second).
			Should(Equal(reads), "Secret reads after a restart with nothing due")
		for _, name := range banks {
			Expect(bank.Requests(name)).To(Equal(callsBefore[name]), "%s: a token call with nothing due", name)
			Expect(readyCondition(requests[name]).Status).To(Equal(metav1.ConditionTrue))
		}
		GinkgoWriter.Printf("Secret reads by the reconciler over a resync and a restart, 3 resources with nothing due: %d\n", writes.secretReads(ns)-reads)

		// Edited by hand, labels kept: the version differs, the Secret is read and put back.
		tampered := outputSecret(requests[providers.Banfico])
		tampered.Data[tokensv1alpha1.SecretKeyAccessToken] = []byte("edited-by-hand")
		Expect(k8sClient.Update(suiteCtx, tampered)).To(Succeed())
		Eventually(func() bool {
			return bank.AccessTokenValid(providers.Banfico, accessTokenIn(outputSecret(requests[providers.Banfico])))
		}).WithTimeout(5*time.Second).Should(BeTrue(), "the tampered output Secret was not repaired")

		rakbank := requests[providers.RAKBank]
		token := accessTokenIn(outputSecret(rakbank))
		rotated := bank.RotateClientSecret(providers.RAKBank)
		seenSecrets.add(rotated.ClientSecret)
		createOrUpdateSecret(ns, rakbank.Spec.CredentialsSecretRef.Name, map[string][]byte{
			"client_id": []byte(rotated.ClientID), "client_secret": []byte(rotated.ClientSecret)})
		Eventually(func() string { return accessTokenIn(outputSecret(rakbank)) }).WithTimeout(5*time.Second).
			ShouldNot(Equal(token), "the changed credentials were not acted on")
		Expect(bank.AccessTokenValid(providers.RAKBank, accessTokenIn(outputSecret(rakbank)))).To(BeTrue())
	})
})
