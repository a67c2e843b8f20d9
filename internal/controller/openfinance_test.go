package controller

import (
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// openFinanceLabel marks the specs of issue 27's Open Finance features.
const openFinanceLabel = "openfinance"

var _ = Describe("Open Finance: interaction ids and token-request parameters", Label(openFinanceLabel), func() {
	It("gives every token and revocation call a distinct x-fapi-interaction-id, logged with its outcome and shown as the last attempt", func() {
		ns := newNamespace()
		since := time.Now()
		btr := applyBank(ns, providers.Paymob, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.FAPIInteractionID = tokensv1alpha1.FAPIInteractionIDEnabled
		})
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		By("a renewal asked for: a second token call")
		requestRefresh(btr, time.Now().UTC().Format(time.RFC3339))
		Eventually(func() int { return len(callIDsSince(providers.Paymob, since)) }).Should(BeNumerically(">=", 2))
		Eventually(func() string { return interactionIDOf(getBTR(btr).Status.LastAttempt) }).
			Should(Equal(lastOf(callIDsSince(providers.Paymob, since))))
		last := getBTR(btr).Status.LastAttempt
		Expect(last.Outcome).To(Equal(tokensv1alpha1.TokenCallSucceeded))
		Expect(last.Time.IsZero()).To(BeFalse())

		By("deleting it: the finalizer revokes the grants left, each call with an id of its own")
		Expect(k8sClient.Delete(suiteCtx, btr)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(btr), &tokensv1alpha1.BankTokenRequest{}))
		}).Should(BeTrue())
		var revocations []string
		for _, rv := range bank.Revocations(providers.Paymob) {
			if rv.InteractionID != "" && !rv.At.Before(since) {
				revocations = append(revocations, rv.InteractionID)
			}
		}
		Expect(revocations).NotTo(BeEmpty())

		ids := append(callIDsSince(providers.Paymob, since), revocations...)
		Expect(ids).To(HaveLen(len(distinct(ids))), "an interaction id was sent twice")
		for _, id := range ids {
			_, err := uuid.Parse(id)
			Expect(err).NotTo(HaveOccurred(), "%q is not one UUID", id)
			Expect(logLineWith(id)).To(Or(ContainSubstring("token call succeeded"), ContainSubstring("revoked a grant the operator no longer uses")),
				"the call with interaction id %s has no log line of its outcome", id)
		}
	})

	It("names the failed call's interaction id in the log, the Warning event and status", func() {
		ns := newNamespace()
		since := time.Now()
		btr := applyBank(ns, providers.Paymob, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.FAPIInteractionID = tokensv1alpha1.FAPIInteractionIDEnabled
			b.Spec.Scope = "admin" // not a scope the bank grants: invalid_scope
		})
		Eventually(func() string { return stalledReason(btr) }).ShouldNot(BeEmpty())
		ids := callIDsSince(providers.Paymob, since)
		Expect(ids).To(HaveLen(1))
		last := getBTR(btr).Status.LastAttempt
		Expect(last).NotTo(BeNil())
		Expect(*last).To(And(HaveField("InteractionID", ids[0]), HaveField("Outcome", tokensv1alpha1.TokenCallFailed),
			HaveField("Reason", stalledReason(btr))))
		Expect(logLineWith(ids[0])).To(ContainSubstring("obtaining a token failed"))
		Eventually(func() []string { return warningNotes(btr) }).Should(ContainElement(ContainSubstring("(x-fapi-interaction-id " + ids[0] + ")")))
	})

	It("records the last attempt without an extra write: one Secret and one status write per issued token, as without interaction ids", func() {
		ns := newNamespace()
		btr := applyBank(ns, providers.Banfico, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.FAPIInteractionID = tokensv1alpha1.FAPIInteractionIDEnabled
		})
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Consistently(func() int { return writes.count(ns) }).WithTimeout(2*time.Second).Should(Equal(2), func() string { return strings.Join(writes.calls(ns), ", ") })
		Expect(getBTR(btr).Status.LastAttempt).To(HaveField("Outcome", tokensv1alpha1.TokenCallSucceeded))
		GinkgoWriter.Printf("apiserver writes for one issued token with interaction ids: %d\n", writes.count(ns))
	})

	It("binds the refresh token to the parameters: after a change the next call is a new grant with the new ones, never a refresh", func() {
		ns := newNamespace()
		// A Django OAuth Toolkit server (Paymob's sandbox) reached as a generic OAuth2 server.
		btr := applyBank(ns, providers.Paymob, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.Provider, b.Spec.GrantType = tokensv1alpha1.ProviderOAuth2, tokensv1alpha1.GrantTypePassword
			b.Spec.RefreshRevokesAccessToken = ptr.To(true)
			b.Spec.TokenRequestParameters = []tokensv1alpha1.TokenRequestParameter{{Name: "audience", Value: "https://payouts.example/v1"}}
		})
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Expect(refreshTokenIn(btr)).NotTo(BeEmpty())

		changed := time.Now()
		current := getBTR(btr)
		current.Spec.TokenRequestParameters[0].Value = "https://payouts.example/v2"
		Expect(k8sClient.Update(suiteCtx, current)).To(Succeed())
		Eventually(func() []sandbox.Call { return callsWithAudienceSince(providers.Paymob, changed) }).ShouldNot(BeEmpty())
		first := callsWithAudienceSince(providers.Paymob, changed)[0]
		Expect(first.Grant).To(Equal(providers.GrantPassword), "a refresh token issued for the old audience was sent")
		Expect(first.Audience).To(Equal([]string{"https://payouts.example/v2"}))
		Expect(first.Accepted()).To(BeTrue())
	})

	It("sends an OAuth2 server two resource values and an audience in the token request", func() {
		ns := newNamespace()
		since := time.Now()
		resources := []string{"https://api.bank.example/accounts", "https://api.bank.example/payments"}
		btr := applyBank(ns, sandbox.MTLSServer, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.TokenRequestParameters = []tokensv1alpha1.TokenRequestParameter{
				{Name: "resource", Value: resources[0]}, {Name: "audience", Value: "https://bank.example"}, {Name: "resource", Value: resources[1]}}
		})
		secret := eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Expect(bank.AccessTokenValid(sandbox.MTLSServer, accessTokenIn(secret))).To(BeTrue())
		var sent []sandbox.Call
		for _, c := range bank.Calls(sandbox.MTLSServer) {
			if !c.At.Before(since) && c.Accepted() {
				sent = append(sent, c)
			}
		}
		Expect(sent).To(HaveLen(1))
		Expect(sent[0].Resource).To(Equal(resources))
		Expect(sent[0].Audience).To(Equal([]string{"https://bank.example"}))
		Expect(sent[0].InteractionID).To(BeEmpty(), "OAuth2 sends no interaction id unless the spec asks")
	})
})

// callIDsSince lists the x-fapi-interaction-ids of bank's token calls since t, in order.
func callIDsSince(name providers.Name, t time.Time) []string {
	var ids []string
	for _, c := range bank.Calls(name) {
		if c.InteractionID != "" && !c.At.Before(t) {
			ids = append(ids, c.InteractionID)
		}
	}
	return ids
}

// callsWithAudienceSince lists bank's token calls since t that sent an audience.
func callsWithAudienceSince(name providers.Name, t time.Time) []sandbox.Call {
	var calls []sandbox.Call
	for _, c := range bank.Calls(name) {
		if len(c.Audience) > 0 && !c.At.Before(t) {
			calls = append(calls, c)
		}
	}
	return calls
}

// logLineWith is the manager's one log line naming id, the event recorder's own echo of an
// event left out; "" when none does, and a failure when more than one does.
func logLineWith(id string) string {
	var lines []string
	for _, line := range strings.Split(managerLog.String(), "\n") {
		if strings.Contains(line, id) && !strings.Contains(line, `"logger":"events"`) {
			lines = append(lines, line)
		}
	}
	ExpectWithOffset(1, len(lines)).To(BeNumerically("<=", 1), "interaction id %s in %d log lines:\n%s", id, len(lines), strings.Join(lines, "\n"))
	return strings.Join(lines, "")
}

func distinct(values []string) []string {
	out := slices.Clone(values)
	slices.Sort(out)
	return slices.Compact(out)
}

func lastOf(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[len(values)-1]
}
