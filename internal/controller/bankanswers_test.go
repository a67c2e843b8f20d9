package controller

import (
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// At the real apiserver and the fake banks: what each bank's documented answers
// (a partner refresh token, refusals of a refresh, Keycloak's offline token, MBANQ's tenant
// query) do to a resource's readiness, and that deletion revokes what the operator holds.
var _ = Describe("A RAKBANK partner answering with a refresh token", func() {
	It("keeps a RAKBANK partner resource renewing with client_credentials when the partner also answers a refresh_token", func() {
		bank.SetPartnerReturnsRefreshToken(true)
		DeferCleanup(func() { bank.SetPartnerReturnsRefreshToken(false) })
		shortLifetime(providers.RAKBankPartner, 6*time.Second)
		ns := newNamespace()
		start := time.Now()
		btr := applyBank(ns, providers.RAKBankPartner)
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		readiness := watchReadiness(btr)

		expectRenewals(btr, 5, 40*time.Second)
		Expect(readiness.stop()).To(BeEmpty(), "Ready left True or Stalled appeared")
		Expect(refreshTokenIn(btr)).To(BeEmpty(), "a refresh token no grant can use was stored")
		for _, call := range callsSince(providers.RAKBankPartner, start) {
			Expect(call.Grant).NotTo(Equal(providers.GrantRefreshToken), "a refresh_token call reached the partner endpoint")
			Expect(call.Accepted()).To(BeTrue(), "a partner call failed: %s", call.Reason)
		}
	})
})

var _ = Describe("RAKBANK refusing a refresh", func() {
	DescribeTable("falls back to client_credentials in the same reconcile when RAKBANK refuses a refresh",
		func(fault sandbox.Fault) {
			shortLifetime(providers.RAKBank, 6*time.Second)
			ns := newNamespace()
			btr := applyBank(ns, providers.RAKBank)
			eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
			Expect(refreshTokenIn(btr)).NotTo(BeEmpty(), "RAKBANK's client_credentials answer carries a refresh token")
			readiness := watchReadiness(btr)
			since := time.Now()
			bank.SetFault(providers.RAKBank, fault)
			DeferCleanup(func() { bank.SetFault(providers.RAKBank, sandbox.NoFault) })

			var refused, accepted sandbox.Call
			Eventually(func() bool {
				refused, accepted = refusedRefreshThenPrimary(callsSince(providers.RAKBank, since))
				return !accepted.At.IsZero()
			}).WithTimeout(20*time.Second).Should(BeTrue(), "no refused refresh followed by client_credentials")
			Expect(accepted.At.Sub(refused.At)).To(BeNumerically("<", time.Second),
				"client_credentials came after another reconcile, not the one whose refresh was refused")
			eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
			Expect(readiness.stop()).To(BeEmpty(), "Ready left True or Stalled appeared")
		},
		Entry("as IBM API Connect's gateway 401", sandbox.FaultGateway401OnRefresh),
		Entry("as a proxy's HTML 400 page", sandbox.FaultHTML400OnRefresh),
		Entry("as invalid_grant", sandbox.FaultInvalidGrantOnRefresh),
	)
})

var _ = Describe("Banfico's offline refresh token", func() {
	It("renews Banfico's documented no-scope client through its offline refresh token", func() {
		shortLifetime(providers.Banfico, 6*time.Second)
		ns := newNamespace()
		btr := applyBank(ns, providers.Banfico, func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Scope = "" })
		token := accessTokenIn(eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued))
		Expect(refreshTokenIn(btr)).NotTo(BeEmpty(), "no offline refresh token was stored")
		readiness := watchReadiness(btr)
		refreshes := bank.Issued(providers.Banfico, providers.GrantRefreshToken)

		Eventually(func() string { return accessTokenIn(outputSecret(btr)) }).ShouldNot(Equal(token))
		Expect(bank.Issued(providers.Banfico, providers.GrantRefreshToken)).To(BeNumerically(">", refreshes),
			"the renewal did not use the refresh grant")
		Expect(readiness.stop()).To(BeEmpty(), "Ready left True or Stalled appeared")
	})
})

var _ = Describe("MBANQ's tenant in the endpoint's query", func() {
	It("obtains MBANQ tokens with the tenant in the endpoint's query instead of its header", func() {
		ns := newNamespace()
		start := time.Now()
		btr := applyBank(ns, providers.Mbanq, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.Endpoint = bank.TokenURLWithTenantQuery(providers.Mbanq)
			b.Spec.Headers = slices.DeleteFunc(b.Spec.Headers, func(h tokensv1alpha1.HTTPHeader) bool {
				return h.Name == providers.HeaderMbanqTenant
			})
		})
		Expect(btr.Spec.Headers).NotTo(BeEmpty(), "the device headers must stay")
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Expect(callsSince(providers.Mbanq, start)).To(ContainElement(HaveField("Status", 200)))
	})
})

var _ = Describe("Deleting a Paymob resource", func() {
	It("revokes a Paymob resource's grants at the bank when the resource is deleted", func() {
		clientID := ownClient(providers.Paymob)
		ns := newNamespace()
		btr := applyBank(ns, providers.Paymob)
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Expect(refreshTokenIn(btr)).NotTo(BeEmpty())
		Expect(controllerutil.ContainsFinalizer(getBTR(btr), finalizerRevokeGrants)).To(BeTrue())
		Expect(bank.LiveGrants(providers.Paymob, clientID)).To(BeNumerically(">=", 1))
		revoked := revokedCalls(providers.Paymob)

		Expect(k8sClient.Delete(suiteCtx, btr)).To(Succeed())
		eventuallyGone(btr, 20*time.Second)
		Expect(revokedCalls(providers.Paymob)).To(BeNumerically(">", revoked), "no grant was revoked at the bank")
		Expect(bank.LiveGrants(providers.Paymob, clientID)).To(BeZero(), "a grant outlived its resource")
	})
})

var _ = Describe("Deleting a Paymob resource while the bank is down", func() {
	It("releases a deleted Paymob resource whose bank is down within the revocation budget, and says its grants stay live", func() {
		clientID := ownClient(providers.Paymob)
		ns := newNamespace()
		btr := applyBank(ns, providers.Paymob)
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Expect(refreshTokenIn(btr)).NotTo(BeEmpty())
		bank.SetUnavailable(providers.Paymob, true)
		DeferCleanup(func() { bank.SetUnavailable(providers.Paymob, false) })

		Expect(k8sClient.Delete(suiteCtx, btr)).To(Succeed())
		eventuallyGone(btr, 35*time.Second)
		Eventually(func() []string { return warningReasons(btr) }).Should(ContainElement(eventGrantsLeftLive))
		Expect(bank.LiveGrants(providers.Paymob, clientID)).To(BeNumerically(">=", 1),
			"the bank was down, yet the grant is gone: the test did not test a failed revocation")
	})
})

// shortLifetime makes bank issue tokens living d for the rest of the spec.
func shortLifetime(name providers.Name, d time.Duration) {
	bank.SetLifetime(name, d)
	DeferCleanup(func() { bank.SetLifetime(name, time.Hour) })
}

var ownClientCounter int

// ownClient gives bank a client ID of the spec's own, so that the grants the fake counts
// for it are this spec's alone. Called before newNamespace, the original client comes back
// only after the spec's resources are deleted (DeferCleanup runs last-in, first-out), so
// that their deletion still authenticates.
func ownClient(name providers.Name) string {
	ownClientCounter++
	original := bank.Credentials(name)
	own := original
	own.ClientID = fmt.Sprintf("%s-spec-%d", original.ClientID, ownClientCounter)
	bank.SetCredentials(name, own)
	DeferCleanup(func() { bank.SetCredentials(name, original) })
	return own.ClientID
}

// callsSince is bank's token calls made after t, oldest first.
func callsSince(name providers.Name, t time.Time) []sandbox.Call {
	return slices.DeleteFunc(bank.Calls(name), func(c sandbox.Call) bool { return c.At.Before(t) })
}

// refusedRefreshThenPrimary finds the first refused refresh_token call and the first
// accepted client_credentials call after it; zero Calls where there are none.
func refusedRefreshThenPrimary(calls []sandbox.Call) (refused, accepted sandbox.Call) {
	for _, c := range calls {
		switch {
		case refused.At.IsZero() && c.Grant == providers.GrantRefreshToken && !c.Accepted():
			refused = c
		case !refused.At.IsZero() && c.Grant == providers.GrantClientCredentials && c.Accepted():
			return refused, c
		}
	}
	return refused, sandbox.Call{}
}

// expectRenewals waits for n changes of the output Secret's access token.
func expectRenewals(btr *tokensv1alpha1.BankTokenRequest, n int, within time.Duration) {
	GinkgoHelper()
	token, renewals := accessTokenIn(outputSecret(btr)), 0
	Eventually(func() int {
		if now := accessTokenIn(outputSecret(btr)); now != token {
			token, renewals = now, renewals+1
		}
		return renewals
	}).WithTimeout(within).Should(BeNumerically(">=", n))
}

// revokedCalls counts bank's revocation calls that made a token stop working.
func revokedCalls(name providers.Name) int {
	n := 0
	for _, r := range bank.Revocations(name) {
		if r.Revoked {
			n++
		}
	}
	return n
}

func eventuallyGone(btr *tokensv1alpha1.BankTokenRequest, within time.Duration) {
	GinkgoHelper()
	Eventually(func() bool {
		err := k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(btr), &tokensv1alpha1.BankTokenRequest{})
		return apierrors.IsNotFound(err)
	}).WithTimeout(within).Should(BeTrue(), "the deleted resource was not released")
}

// warningReasons lists the reasons of Warning events about a resource.
func warningReasons(btr *tokensv1alpha1.BankTokenRequest) []string {
	list := &eventsv1.EventList{}
	Expect(k8sClient.List(suiteCtx, list, client.InNamespace(btr.Namespace))).To(Succeed())
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Name == btr.Name && e.Type == corev1.EventTypeWarning {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}
