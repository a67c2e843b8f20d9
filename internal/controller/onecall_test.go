package controller

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// One renewal is one successful token call: the reconciles that follow the operator's own
// writes (Secrets, status, events) must not renew again. A bank that rate-limits or alerts
// on logins would otherwise see every renewal twice.
var _ = Describe("One call per renewal", func() {
	It("makes exactly one successful token call after a credentials change, a fallback and a forced refresh", func() {
		ns := newNamespace()
		start := time.Now()
		btr := applyBank(ns, providers.Paymob)
		token := accessTokenIn(eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued))
		expectOneMoreToken := func(what string, before int, change func()) {
			GinkgoHelper()
			change()
			Eventually(func() string { return accessTokenIn(outputSecret(btr)) }).ShouldNot(Equal(token), what)
			token = accessTokenIn(outputSecret(btr))
			Consistently(func() int { return successfulCalls(providers.Paymob) - before }).
				WithTimeout(2*time.Second).Should(Equal(1), what)
		}

		expectOneMoreToken("after a credentials change", successfulCalls(providers.Paymob), func() {
			rotated := bank.RotateClientSecret(providers.Paymob)
			seenSecrets.add(rotated.ClientSecret)
			writeCredentials(btr, rotated)
		})
		Expect(rejectedSince(providers.Paymob, start)).To(BeEmpty(), "a spent refresh token was sent")
		expectOneMoreToken("after a fallback to the password grant", successfulCalls(providers.Paymob), func() {
			bank.RevokeRefreshTokens(providers.Paymob)
			requestRefresh(btr, "2026-11-30T10:00:00Z")
		})
		expectOneMoreToken("after a forced refresh", successfulCalls(providers.Paymob), func() {
			requestRefresh(btr, "2026-11-30T10:05:00Z")
		})
	})
})

// successfulCalls counts the token calls the sandbox bank answered with a token.
func successfulCalls(name providers.Name) int {
	n := 0
	for _, call := range bank.Calls(name) {
		if call.Error == "" && call.Status == 200 {
			n++
		}
	}
	return n
}

// rejectedSince lists the refresh tokens the sandbox bank refused (spent or revoked) since t.
func rejectedSince(name providers.Name, t time.Time) []string {
	var rejected []string
	for _, call := range bank.Rejected(name) {
		if call.At.After(t) {
			rejected = append(rejected, call.At.Format(time.RFC3339Nano))
		}
	}
	return rejected
}

// requestRefresh sets the refresh annotation, as `kubectl annotate` or Argo CD's action would.
func requestRefresh(btr *tokensv1alpha1.BankTokenRequest, at string) {
	current := getBTR(btr)
	if current.Annotations == nil {
		current.Annotations = map[string]string{}
	}
	current.Annotations[tokensv1alpha1.RefreshRequestedAtAnnotation] = at
	Expect(k8sClient.Update(suiteCtx, current)).To(Succeed())
}
