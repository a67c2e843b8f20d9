package controller

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

var _ = Describe("BankTokenRequest controller", func() {
	BeforeEach(func() {
		DeferCleanup(func() {
			for _, name := range sandbox.Banks() {
				bank.SetLifetime(name, time.Hour)
				bank.SetUnavailable(name, false)
				bank.SetRateLimited(name, 0)
			}
		})
	})

	It("issues a working token for each of the five banks and refreshes it before it expires", func() {
		ns := newNamespace()
		requests := map[providers.Name]*tokensv1alpha1.BankTokenRequest{}
		for _, name := range sandbox.Banks() {
			bank.SetLifetime(name, 9*time.Second)
			requests[name] = applyBank(ns, name)
		}
		first := map[providers.Name]*corev1.Secret{}
		for name, btr := range requests {
			secret := eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
			token := accessTokenIn(secret)
			Expect(bank.AccessTokenValid(name, token)).To(BeTrue(), "%s: the bank does not accept the token", name)
			Expect(string(secret.Data["authorization"])).To(Equal("Bearer "+token), "%s", name)
			Expect(string(secret.Data["token_type"])).To(Equal("Bearer"), "%s", name)
			expiresAt, err := time.Parse(time.RFC3339, string(secret.Data["expires_at"]))
			Expect(err).NotTo(HaveOccurred())
			Expect(expiresAt).To(BeTemporally("~", time.Now().Add(9*time.Second), 3*time.Second))
			status := getBTR(btr).Status
			Expect(status.SecretName).To(Equal(btr.Name))
			Expect(status.RenewalTime.Time).To(BeTemporally("<", expiresAt), "%s: renewal must come before expiry", name)
			first[name] = secret
		}
		for name, btr := range requests {
			old := first[name]
			oldExpiry, _ := time.Parse(time.RFC3339, string(old.Data["expires_at"]))
			Eventually(func() string { return accessTokenIn(outputSecret(btr)) }).
				ShouldNot(Equal(accessTokenIn(old)), "%s: no refresh", name)
			Expect(time.Now()).To(BeTemporally("<", oldExpiry), "%s: refreshed only after the token expired", name)
			Expect(bank.AccessTokenValid(name, accessTokenIn(outputSecret(btr)))).To(BeTrue())
			Expect(readyCondition(btr).Status).To(Equal(metav1.ConditionTrue))
		}
	})

	It("writes the Secret and the status once per issued token, and calls the bank once", func() {
		ns := newNamespace()
		before := bank.Requests(providers.Banfico)
		btr := applyBank(ns, providers.Banfico)
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Consistently(func() int { return writes.count(ns) }).WithTimeout(2*time.Second).Should(Equal(2), func() string { return strings.Join(writes.calls(ns), ", ") })
		calls := strings.Join(writes.calls(ns), "\n")
		Expect(calls).To(ContainSubstring("POST /api/v1/namespaces/" + ns + "/secrets"))
		Expect(calls).To(ContainSubstring("PATCH /apis/tokens.banktoken.io/v1alpha1/namespaces/" + ns + "/banktokenrequests/banfico/status"))
		Expect(eventReasons(btr)).To(BeEmpty(), "a routine issue emits no event unless --issue-events is set")
		Expect(bank.Requests(providers.Banfico) - before).To(Equal(1))
		GinkgoWriter.Printf("apiserver writes for one issued token: %d (%s)\n", writes.count(ns), strings.ReplaceAll(calls, "\n", ", "))
	})

	It("rotates Paymob refresh tokens, uses each once, and falls back to the password grant when one is revoked", func() {
		ns := newNamespace()
		start := time.Now()
		bank.SetLifetime(providers.Paymob, 8*time.Second)
		btr := applyBank(ns, providers.Paymob)
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		rt1 := refreshTokenIn(btr)
		Expect(rt1).NotTo(BeEmpty(), "the refresh token is kept in its own Secret")
		Expect(outputSecret(btr).Data).NotTo(HaveKey("refresh_token"), "workloads must not see the refresh token")
		refreshesBefore := bank.Issued(providers.Paymob, providers.GrantRefreshToken)

		// Paymob's refresh revokes the access token it was issued with: the first renewal
		// opens a second chain, later ones refresh the standby chain.
		Eventually(refreshTokenIn).WithArguments(btr).ShouldNot(Equal(rt1))
		Eventually(func() int { return bank.Issued(providers.Paymob, providers.GrantRefreshToken) }).
			Should(BeNumerically(">", refreshesBefore))
		Eventually(func() bool { return bank.RefreshTokenValid(providers.Paymob, rt1) }).Should(BeFalse(), "the first chain was never refreshed")
		Expect(rejectedSince(providers.Paymob, start)).To(BeEmpty(), "a spent refresh token was sent")

		passwordGrants := bank.Issued(providers.Paymob, providers.GrantPassword)
		bank.RevokeRefreshTokens(providers.Paymob)
		Eventually(func() int { return bank.Issued(providers.Paymob, providers.GrantPassword) }).
			Should(BeNumerically(">", passwordGrants), "no fallback to the password grant")
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Eventually(func() []string { return eventReasons(btr) }).Should(ContainElement(eventRefreshTokenRejected))
		Expect(getBTR(btr).Status.FailedAttempts).To(BeZero(), "a fallback is not a failure")
		Expect(bank.RefreshTokenValid(providers.Paymob, refreshTokenIn(btr))).To(BeTrue())
	})

	It("waits for a missing credentials Secret and issues as soon as it appears", func() {
		ns := newNamespace()
		btr := applyBank(ns, providers.RAKBank, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.CredentialsSecretRef.Name = "rakbank-credentials-later"
		})
		Eventually(func(g Gomega) {
			c := readyCondition(btr)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonCredentialsSecretNotFound))
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(meta.IsStatusConditionTrue(getBTR(btr).Status.Conditions, tokensv1alpha1.ConditionStalled)).To(BeTrue())
		}).Should(Succeed())

		creds := bank.Credentials(providers.RAKBank)
		createOrUpdateSecret(ns, "rakbank-credentials-later", map[string][]byte{"client_id": []byte(creds.ClientID)})
		Eventually(func() string { return readyCondition(btr).Reason }).Should(Equal(tokensv1alpha1.ReasonCredentialsKeyMissing))
		Expect(readyCondition(btr).Message).To(ContainSubstring(`no key "client_secret" in credentials Secret ` + ns + "/rakbank-credentials-later"))

		createOrUpdateSecret(ns, "rakbank-credentials-later", map[string][]byte{
			"client_id": []byte(creds.ClientID), "client_secret": []byte(creds.ClientSecret)})
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Expect(meta.FindStatusCondition(getBTR(btr).Status.Conditions, tokensv1alpha1.ConditionStalled)).To(BeNil(), "Stalled is present only when true")
	})

	It("issues a new token within seconds when the credentials are rotated or the spec changes", func() {
		ns := newNamespace()
		btr := applyBank(ns, providers.Mbanq)
		token := accessTokenIn(eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued))

		rotated := bank.RotateClientSecret(providers.Mbanq)
		seenSecrets.add(rotated.ClientSecret)
		createOrUpdateSecret(ns, "mbanq-credentials", map[string][]byte{
			"client_id": []byte(rotated.ClientID), "client_secret": []byte(rotated.ClientSecret),
			"username": []byte(rotated.Username), "password": []byte(rotated.Password)})
		Eventually(func() string { return accessTokenIn(outputSecret(btr)) }).WithTimeout(5 * time.Second).ShouldNot(Equal(token))
		token = accessTokenIn(outputSecret(btr))
		Expect(bank.AccessTokenValid(providers.Mbanq, token)).To(BeTrue())

		current := getBTR(btr)
		current.Spec.Headers = append(current.Spec.Headers, tokensv1alpha1.HTTPHeader{Name: "X-Trace", Value: "on"})
		Expect(k8sClient.Update(suiteCtx, current)).To(Succeed())
		Eventually(func() string { return accessTokenIn(outputSecret(btr)) }).WithTimeout(5 * time.Second).ShouldNot(Equal(token))
		Expect(getBTR(btr).Status.ObservedGeneration).To(Equal(getBTR(btr).Generation))
	})

	It("puts back a deleted or altered output Secret, and applies a new template without a new token", func() {
		ns := newNamespace()
		btr := applyBank(ns, providers.Banfico)
		secret := eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)

		Expect(k8sClient.Delete(suiteCtx, secret)).To(Succeed())
		Eventually(func() error {
			return k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(secret), &corev1.Secret{})
		}).Should(Succeed())
		restored := outputSecret(btr)
		Expect(bank.AccessTokenValid(providers.Banfico, accessTokenIn(restored))).To(BeTrue())

		restored.Data["access_token"] = []byte("tampered")
		Expect(k8sClient.Update(suiteCtx, restored)).To(Succeed())
		Eventually(func() bool {
			return bank.AccessTokenValid(providers.Banfico, accessTokenIn(outputSecret(btr)))
		}).Should(BeTrue())

		calls := bank.Requests(providers.Banfico)
		current := getBTR(btr)
		current.Spec.SecretTemplate = &tokensv1alpha1.SecretTemplate{Labels: map[string]tokensv1alpha1.LabelValue{"team": "payments"}}
		Expect(k8sClient.Update(suiteCtx, current)).To(Succeed())
		Eventually(func() map[string]string { return outputSecret(btr).Labels }).Should(HaveKeyWithValue("team", "payments"))
		Expect(bank.Requests(providers.Banfico)).To(Equal(calls), "a label is no reason to call the bank")
	})

	It("keeps a valid token while the bank is down, backs off, and recovers when it is back", func() {
		ns := newNamespace()
		bank.SetLifetime(providers.RAKBank, time.Minute)
		btr := applyBank(ns, providers.RAKBank, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.RenewBefore = &metav1.Duration{Duration: 57 * time.Second}
		})
		token := accessTokenIn(eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued))
		bank.SetUnavailable(providers.RAKBank, true)

		var firstDelay time.Duration
		Eventually(func(g Gomega) {
			status := getBTR(btr).Status
			g.Expect(status.FailedAttempts).To(BeNumerically(">=", 1))
			firstDelay = status.RenewalTime.Sub(status.LastFailureTime.Time)
		}).Should(Succeed())
		c := readyCondition(btr)
		Expect(c.Status).To(Equal(metav1.ConditionTrue), "the workload's token still works")
		Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonRefreshFailing))
		Expect(c.Message).To(ContainSubstring("token valid until"))
		Expect(accessTokenIn(outputSecret(btr))).To(Equal(token), "a valid token is never replaced by nothing")

		Eventually(func() int32 { return getBTR(btr).Status.FailedAttempts }).Should(BeNumerically(">=", 2))
		status := getBTR(btr).Status
		Expect(status.RenewalTime.Sub(status.LastFailureTime.Time)).To(BeNumerically(">", firstDelay), "backoff grows")
		Expect(eventReasons(btr)).To(ContainElement(eventRefreshFailed))

		bank.SetUnavailable(providers.RAKBank, false)
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Expect(accessTokenIn(outputSecret(btr))).NotTo(Equal(token))
		Expect(getBTR(btr).Status.FailedAttempts).To(BeZero())
		Eventually(func() []string { return eventReasons(btr) }).Should(ContainElement(eventRecovered))
	})

	It("turns Ready false when the token expires while the bank stays down", func() {
		ns := newNamespace()
		bank.SetLifetime(providers.Banfico, 5*time.Second)
		btr := applyBank(ns, providers.Banfico)
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		bank.SetUnavailable(providers.Banfico, true)
		Eventually(func() string { return readyCondition(btr).Reason }).Should(Equal(tokensv1alpha1.ReasonRefreshFailing))
		Eventually(func(g Gomega) {
			c := readyCondition(btr)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(tokensv1alpha1.ReasonTokenExpired))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		Expect(readyCondition(btr).Message).To(ContainSubstring("obtaining a new one is failing"))
		// Further failed attempts leave it at TokenExpired; the failure is in the message.
		attempts := getBTR(btr).Status.FailedAttempts
		Eventually(func() int32 { return getBTR(btr).Status.FailedAttempts }).WithTimeout(15 * time.Second).
			Should(BeNumerically(">", attempts))
		Expect(readyCondition(btr).Reason).To(Equal(tokensv1alpha1.ReasonTokenExpired))
		Expect(readyCondition(btr).Message).To(ContainSubstring("obtaining a new one is failing (ServerError)"))
	})

	It("honours Retry-After when the bank rate-limits", func() {
		ns := newNamespace()
		bank.SetRateLimited(providers.Banfico, 8*time.Second)
		before := bank.Requests(providers.Banfico)
		btr := applyBank(ns, providers.Banfico)
		Eventually(func() string { return ptr.Deref(readyCondition(btr), metav1.Condition{}).Reason }).Should(Equal(providers.ReasonRateLimited))
		status := getBTR(btr).Status
		Expect(status.RenewalTime.Sub(status.LastFailureTime.Time)).To(BeNumerically(">=", 8*time.Second-time.Second))
		Expect(meta.IsStatusConditionTrue(status.Conditions, tokensv1alpha1.ConditionReconciling)).To(BeTrue())
		Consistently(func() int { return bank.Requests(providers.Banfico) - before }).WithTimeout(5 * time.Second).Should(Equal(1))
		bank.SetRateLimited(providers.Banfico, 0)
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
	})

	It("makes no call while suspended and refuses plain http endpoints", func() {
		ns := newNamespace()
		before := bank.Requests(providers.Paymob)
		suspended := applyBank(ns, providers.Paymob, func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Suspend = true })
		Eventually(func() string { return ptr.Deref(readyCondition(suspended), metav1.Condition{}).Reason }).Should(Equal(tokensv1alpha1.ReasonSuspended))
		insecure := applyBank(ns, providers.RAKBank, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.Endpoint = strings.Replace(b.Spec.Endpoint, "https://", "http://", 1)
		})
		Eventually(func() string { return ptr.Deref(readyCondition(insecure), metav1.Condition{}).Reason }).Should(Equal(tokensv1alpha1.ReasonInsecureEndpoint))
		Expect(bank.Requests(providers.Paymob)).To(Equal(before))
	})

	It("stays idle when nothing is due and fetches nothing again after a restart", func() {
		ns := newNamespace()
		btrs := []*tokensv1alpha1.BankTokenRequest{
			applyBank(ns, providers.RAKBankPartner), applyBank(ns, providers.Paymob), applyBank(ns, providers.Mbanq)}
		for _, btr := range btrs {
			eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		}
		callsBefore := totalRequests()
		writesBefore := writes.count(ns)
		quiet := func() int { return writes.count(ns) - writesBefore + totalRequests() - callsBefore }

		// Two resync periods: every resource is reconciled again with nothing due.
		Consistently(quiet).WithTimeout(2*resyncPeriod+time.Second).Should(BeZero(),
			func() string { return fmt.Sprintf("idle writes: %v", writes.calls(ns)[writesBefore:]) })

		restartManager()
		Consistently(quiet).WithTimeout(resyncPeriod+time.Second).Should(BeZero(),
			"a restart re-fetched a token that was still good, or wrote")
		for _, btr := range btrs {
			eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		}
	})

	It("holds only owned Secrets cluster-wide, and watches referenced ones only in namespaces with requests", func() {
		quiet := newNamespace()
		createOrUpdateSecret(quiet, "unrelated", map[string][]byte{"payload": []byte("x")})
		ns := newNamespace()
		createOrUpdateSecret(ns, "also-unrelated", map[string][]byte{"payload": []byte("x")})
		btr := applyBank(ns, providers.RAKBank)
		output := eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)

		Eventually(reconciler.references.WatchedNamespaces).Should(ContainElement(ns))
		Expect(reconciler.references.WatchedNamespaces()).NotTo(ContainElement(quiet))

		// The manager's cache holds the output Secret (labelled as ours) and nothing else.
		cachedSecret := func(namespace, name string) error {
			m := &metav1.PartialObjectMetadata{}
			m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
			return managerCache.Get(suiteCtx, types.NamespacedName{Namespace: namespace, Name: name}, m)
		}
		Eventually(func() error { return cachedSecret(ns, output.Name) }).Should(Succeed())
		Expect(apierrors.IsNotFound(cachedSecret(ns, "also-unrelated"))).To(BeTrue(), "an unlabelled Secret is in the manager's cache")
		Expect(apierrors.IsNotFound(cachedSecret(quiet, "unrelated"))).To(BeTrue(), "an unlabelled Secret is in the manager's cache")

		// The namespace's watch knows its other Secrets, so a new resource is spared only the
		// reads of names nobody holds.
		Expect(reconciler.secretKnownAbsent(suiteCtx, ns, "also-unrelated")).To(BeFalse())
		Expect(reconciler.secretKnownAbsent(suiteCtx, ns, output.Name)).To(BeFalse())
		Expect(reconciler.secretKnownAbsent(suiteCtx, ns, "nobody-holds-this")).To(BeTrue())
		Expect(reconciler.secretKnownAbsent(suiteCtx, quiet, "nobody-holds-this")).To(BeFalse(), "an unwatched namespace is not known")

		// The last request leaving a namespace ends its watch.
		Expect(k8sClient.Delete(suiteCtx, btr)).To(Succeed())
		Eventually(reconciler.references.WatchedNamespaces).ShouldNot(ContainElement(ns))
	})
})

func totalRequests() int {
	n := 0
	for _, name := range sandbox.Banks() {
		n += bank.Requests(name)
	}
	return n
}
