package controller

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// A refresh token belongs to the inputs it was issued under: these run against the sandbox
// Paymob, whose refresh tokens rotate, through the real manager and kube-apiserver.
var _ = Describe("Refresh tokens bound to their inputs", func() {
	It("proves rotated credentials with the password grant at once, and fails a wrong password now while keeping the valid token", func() {
		ns := newNamespace()
		original := bank.Credentials(providers.Paymob)
		DeferCleanup(func() { bank.SetCredentials(providers.Paymob, original) })
		btr := applyBank(ns, providers.Paymob)
		token := accessTokenIn(eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued))
		Expect(refreshTokenIn(btr)).NotTo(BeEmpty())
		refreshes := bank.Issued(providers.Paymob, providers.GrantRefreshToken)
		logins := bank.Issued(providers.Paymob, providers.GrantPassword)

		rotated := original
		rotated.Password = "fixture-rotated-password"
		seenSecrets.add(rotated.Password)
		bank.SetCredentials(providers.Paymob, rotated)
		writeCredentials(btr, rotated)
		Eventually(func() string { return accessTokenIn(outputSecret(btr)) }).WithTimeout(5 * time.Second).ShouldNot(Equal(token))
		Expect(bank.Issued(providers.Paymob, providers.GrantPassword)).To(Equal(logins+1), "the new password was not proven")
		Expect(bank.Issued(providers.Paymob, providers.GrantRefreshToken)).To(Equal(refreshes), "a refresh token was sent for the new credentials")
		token = accessTokenIn(eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued))

		wrong := rotated
		wrong.Password = "fixture-wrong-password"
		seenSecrets.add(wrong.Password)
		writeCredentials(btr, wrong)
		Eventually(func(g Gomega) {
			c := readyCondition(btr)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "the held token still works")
			g.Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonRefreshFailing))
			g.Expect(c.Message).To(ContainSubstring(providers.ReasonInvalidCredentials))
		}).WithTimeout(5 * time.Second).Should(Succeed())
		Expect(getBTR(btr).Status.Conditions).To(ContainElement(And(
			HaveField("Type", tokensv1alpha1.ConditionStalled), HaveField("Reason", providers.ReasonInvalidCredentials))))
		Eventually(func() []string { return eventReasons(btr) }).Should(ContainElement(eventRefreshFailed))
		Expect(accessTokenIn(outputSecret(btr))).To(Equal(token), "a valid token was replaced by nothing")
		Expect(bank.AccessTokenValid(providers.Paymob, token)).To(BeTrue())
		Expect(bank.Issued(providers.Paymob, providers.GrantRefreshToken)).To(Equal(refreshes), "the wrong password was hidden behind a refresh")
	})

	It("never sends a refresh token to a host that did not issue it", func() {
		ns := newNamespace()
		other, err := sandbox.Start(sandbox.Options{Hosts: []string{"localhost"}})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(other.Close)
		other.SetCredentials(providers.Paymob, bank.Credentials(providers.Paymob))

		btr := applyBank(ns, providers.Paymob)
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Expect(refreshTokenIn(btr)).NotTo(BeEmpty())
		// Trust both hosts, then move the endpoint to the other one.
		trustBoth := harness.CABundleConfigMap(bank, ns, harness.CABundleConfigMapName)
		trustBoth.Data[tokensv1alpha1.DefaultCABundleKey] += string(other.CABundle())
		Expect(harness.CreateOrUpdate(suiteCtx, k8sClient, trustBoth)).To(Succeed())
		current := getBTR(btr)
		current.Spec.Endpoint = other.TokenURL(providers.Paymob)
		Expect(k8sClient.Update(suiteCtx, current)).To(Succeed())

		Eventually(func() int { return other.Issued(providers.Paymob, providers.GrantPassword) }).Should(Equal(1))
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		for _, call := range other.Calls(providers.Paymob) {
			Expect(call.Grant).NotTo(Equal(providers.GrantRefreshToken), "a refresh token went to a host that never issued it")
		}
		Expect(other.Rejected(providers.Paymob)).To(BeEmpty())
	})
})

// writeCredentials replaces the request's credentials Secret.
func writeCredentials(btr *tokensv1alpha1.BankTokenRequest, c sandbox.BankCredentials) {
	createOrUpdateSecret(btr.Namespace, btr.Spec.CredentialsSecretRef.Name, map[string][]byte{
		"client_id": []byte(c.ClientID), "client_secret": []byte(c.ClientSecret),
		"username": []byte(c.Username), "password": []byte(c.Password)})
}
