package controller

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// The call budget a connection's requests share, seen from the bank: its log of each
// client's calls (sandbox.Server.CallsFrom) is what the budget must hold to, over every
// sliding window, and a 429 to one request must silence every request of the connection.

var _ = Describe("Connection call budget", func() {
	It("keeps a restarted manager's renewals of many requests within the connection's budget at the bank, the most urgent first", func() {
		n := budgetSpecRequests()
		clientID := ownClient(providers.Paymob)
		name := clusterConnectionName()
		namespaces := []string{newNamespace(), newNamespace(), newNamespace(), newNamespace()}
		applyClusterConnection(name, admitNames(namespaces...), withCallBudget(budgetSpecCalls, budgetSpecInterval))
		scope := bank.Credentials(providers.Paymob).Scope
		DeferCleanup(bank.SetLifetime, providers.Paymob, sandbox.DefaultLifetime)
		// Two groups whose names interleave: the odd ones' tokens live an hour, the even ones'
		// twenty minutes. The even ones are the most urgent, and not the first by name.
		start := time.Now()
		bank.SetLifetime(providers.Paymob, time.Hour)
		requestsThroughMany(namespaces, name, scope, n, 1)
		eventuallyIssued(namespaces, (n+1)/2, n)
		bank.SetLifetime(providers.Paymob, 20*time.Minute)
		requestsThroughMany(namespaces, name, scope, n, 0)
		eventuallyIssued(namespaces, n, n)
		issued := time.Since(start)
		before := outputSecretsIn(namespaces)
		urgency := urgencyOrder(namespaces)

		By("restarting with new credentials, so that every request is due at once")
		stopManager()
		<-managerDone
		rotated := bank.RotateClientSecret(providers.Paymob)
		seenSecrets.add(rotated.ClientSecret)
		credentials := &corev1.Secret{}
		Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: clusterConnectionNamespace, Name: name + "-credentials"}, credentials)).To(Succeed())
		credentials.Data[tokensv1alpha1.DefaultClientSecretKey] = []byte(rotated.ClientSecret)
		Expect(k8sClient.Update(suiteCtx, credentials)).To(Succeed())
		restarted := time.Now()
		startManager()
		notReady := eventuallyRenewed(namespaces, before, n)
		renewed := time.Since(restarted)

		calls := bank.CallsFrom(providers.Paymob, clientID)
		most, busiest := busiestWindow(calls, budgetSpecInterval)
		inOrder, urgentFirst := urgencyKept(urgency, outputSecretsIn(namespaces))
		report := fmt.Sprintf("%d requests, budget %d per %s: %d calls at the bank, at most %d in any %s window; issued in %s, "+
			"(from %s after the restart), all renewed %s after the restart; %.0f%% of pairs renewed in urgency order, "+
			"%.0f%% of the first half the urgent group", n, budgetSpecCalls, budgetSpecInterval, len(calls), most, budgetSpecInterval,
			issued.Round(time.Millisecond), busiest.Sub(restarted).Round(time.Millisecond), renewed.Round(time.Millisecond),
			100*inOrder, 100*urgentFirst)
		AddReportEntry("call budget", report)
		GinkgoWriter.Println(report)
		Expect(notReady).To(BeEmpty(), "a request whose token was valid was not Ready while it waited")
		Expect(most).To(BeNumerically("<=", budgetSpecCalls), "the bank saw more calls in one window than the budget")
		Expect(len(calls)).To(BeNumerically(">=", 2*n), "the bank did not see an issue and a renewal per request")
		Expect(urgentFirst).To(BeNumerically(">=", 0.8), "the most urgent requests were not renewed first")
		Expect(inOrder).To(BeNumerically(">=", 0.8), "renewals did not follow the tokens' expiry")
	})

	It("pauses every request of a connection when the bank answers one of them 429, until the time it gave, and not another connection to the same bank", func() {
		clientA := ownClient(providers.Paymob)
		clientB, secretB := clientA+"-second", "demo-paymob-second-client-secret-1"
		bank.AddClient(providers.Paymob, clientB, secretB)
		DeferCleanup(bank.SetLifetime, providers.Paymob, sandbox.DefaultLifetime)
		// Tokens of 6 s are renewed every 3 s or so: during the pause, most are due.
		bank.SetLifetime(providers.Paymob, 6*time.Second)
		nameA, nameB := clusterConnectionName(), clusterConnectionName()
		ns := newNamespace()
		applyClusterConnection(nameA, admitNames(ns))
		applyClusterConnection(nameB, admitNames(ns))
		useClient(nameB, clientB, secretB)
		scope := bank.Credentials(providers.Paymob).Scope
		var throughA, throughB []*tokensv1alpha1.BankTokenRequest
		for i := range 4 {
			throughA = append(throughA, requestNamed(ns, fmt.Sprintf("a-%d", i), nameA, scope))
		}
		for i := range 2 {
			throughB = append(throughB, requestNamed(ns, fmt.Sprintf("b-%d", i), nameB, scope))
		}
		for _, btr := range append(slices.Clone(throughA), throughB...) {
			eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		}

		const retryAfter = 6 * time.Second
		bank.SetClientRateLimited(providers.Paymob, clientA, retryAfter)
		var limitedAt time.Time
		Eventually(func() bool {
			for _, c := range bank.CallsFrom(providers.Paymob, clientA) {
				if c.Status == 429 {
					limitedAt = c.At
					return true
				}
			}
			return false
		}).Should(BeTrue(), "no request of the connection called while the bank rate-limited it")
		// The bank serves the client again at once: only the operator's pause holds its calls.
		bank.SetClientRateLimited(providers.Paymob, clientA, 0)
		pauseEnds := limitedAt.Add(retryAfter)

		Eventually(func() *metav1.Time { return clusterConnectionStatus(nameA).Budget.PausedUntil }).
			ShouldNot(BeNil(), "the connection's status does not show the pause")
		Expect(clusterConnectionStatus(nameA).Budget.PausedUntil.Time).To(BeTemporally("~", pauseEnds, 1500*time.Millisecond))
		Eventually(func() bool { return anyReconciling(throughA, tokensv1alpha1.ReasonConnectionPaused) }).
			WithTimeout(time.Until(pauseEnds)).Should(BeTrue(), "no request of the paused connection said it waits for the pause")
		time.Sleep(time.Until(pauseEnds.Add(time.Second)))

		// A call already on its way when the 429 came may land a moment after it; none after that.
		held := limitedAt.Add(500 * time.Millisecond)
		for _, c := range bank.CallsFrom(providers.Paymob, clientA) {
			Expect(c.At.After(held) && c.At.Before(pauseEnds)).To(BeFalse(),
				"a request of the paused connection called %s after the 429, before the pause ended", c.At.Sub(limitedAt))
		}
		Expect(callsBetween(bank.CallsFrom(providers.Paymob, clientB), held, pauseEnds)).NotTo(BeZero(),
			"the other connection to the same bank made no call during the pause")
		Expect(clusterConnectionStatus(nameB).Budget.PausedUntil).To(BeNil(), "the other connection was paused too")
		for _, btr := range throughA {
			eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		}
		Expect(isReadyReason(getBTR(throughB[0]), tokensv1alpha1.ReasonTokenIssued)).To(BeTrue())
	})

	It("renews every request of a BankConnection when its credentials change, within its budget", func() {
		const n, calls, interval = 24, 8, 2 * time.Second
		clientID := ownClient(providers.Paymob)
		ns := newNamespace()
		applyBankConnection(ns, "paymob", withCallBudget(calls, interval))
		scope := bank.Credentials(providers.Paymob).Scope
		var requests []*tokensv1alpha1.BankTokenRequest
		for i := range n {
			btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("tokens-%02d", i)},
				Spec: tokensv1alpha1.BankTokenRequestSpec{Scope: scope, ConnectionRef: &tokensv1alpha1.ConnectionReference{Name: "paymob"}}}
			Expect(k8sClient.Create(suiteCtx, btr)).To(Succeed())
			requests = append(requests, btr)
		}
		eventuallyIssued([]string{ns}, n, n)
		before := outputSecretsIn([]string{ns})

		rotated := bank.RotateClientSecret(providers.Paymob)
		seenSecrets.add(rotated.ClientSecret)
		credentials := &corev1.Secret{}
		Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: ns, Name: "paymob-credentials"}, credentials)).To(Succeed())
		credentials.Data[tokensv1alpha1.DefaultClientSecretKey] = []byte(rotated.ClientSecret)
		Expect(k8sClient.Update(suiteCtx, credentials)).To(Succeed())
		Expect(eventuallyRenewed([]string{ns}, before, n)).To(BeEmpty(), "a request was not Ready while it waited")
		for _, btr := range requests {
			Expect(bank.AccessTokenValid(providers.Paymob, accessTokenIn(outputSecret(btr)))).To(BeTrue())
		}
		most, _ := busiestWindow(bank.CallsFrom(providers.Paymob, clientID), interval)
		Expect(most).To(BeNumerically("<=", calls), "the bank saw more calls in one window than the budget")
	})
})

// requestNamed creates the request name in namespace for scope through the
// ClusterBankConnection connection.
func requestNamed(namespace, name, connection, scope string) *tokensv1alpha1.BankTokenRequest {
	GinkgoHelper()
	btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: tokensv1alpha1.BankTokenRequestSpec{Scope: scope, ConnectionRef: &tokensv1alpha1.ConnectionReference{
			Kind: tokensv1alpha1.KindClusterBankConnection, Name: connection}}}
	Expect(k8sClient.Create(suiteCtx, btr)).To(Succeed())
	return btr
}

// useClient makes the ClusterBankConnection name's credentials Secret hold another client.
func useClient(name, clientID, clientSecret string) {
	GinkgoHelper()
	credentials := &corev1.Secret{}
	Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: clusterConnectionNamespace, Name: name + "-credentials"}, credentials)).To(Succeed())
	credentials.Data[tokensv1alpha1.DefaultClientIDKey] = []byte(clientID)
	credentials.Data[tokensv1alpha1.DefaultClientSecretKey] = []byte(clientSecret)
	Expect(k8sClient.Update(suiteCtx, credentials)).To(Succeed())
}

// applyBankConnection creates the BankConnection name in namespace to the sandbox's Paymob,
// with its credentials Secret and CA bundle beside it.
func applyBankConnection(namespace, name string, mutate ...func(*tokensv1alpha1.BankConnectionSpec)) {
	GinkgoHelper()
	sandboxed := harness.NewSandboxRequest(bank, providers.Paymob, namespace, name)
	for _, o := range []client.Object{sandboxed.Credentials, sandboxed.CABundle} {
		Expect(harness.CreateOrUpdate(suiteCtx, k8sClient, o)).To(Succeed())
	}
	conn := &tokensv1alpha1.BankConnection{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: tokensv1alpha1.BankConnectionSpec{BankClient: sandboxed.Request.Spec.BankClient}}
	for _, m := range mutate {
		m(&conn.Spec)
	}
	Expect(k8sClient.Create(suiteCtx, conn)).To(Succeed())
}

// clusterConnectionStatus is the ClusterBankConnection name's status.
func clusterConnectionStatus(name string) tokensv1alpha1.BankConnectionStatus {
	GinkgoHelper()
	conn := &tokensv1alpha1.ClusterBankConnection{}
	Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Name: name}, conn)).To(Succeed())
	if conn.Status.Budget == nil {
		conn.Status.Budget = &tokensv1alpha1.CallBudgetStatus{}
	}
	return conn.Status
}

// anyReconciling says whether one of the requests is Reconciling for reason.
func anyReconciling(requests []*tokensv1alpha1.BankTokenRequest, reason string) bool {
	for _, btr := range requests {
		if c := meta.FindStatusCondition(getBTR(btr).Status.Conditions, tokensv1alpha1.ConditionReconciling); c != nil && c.Reason == reason {
			return true
		}
	}
	return false
}

// callsBetween counts the calls the bank received after from and before to.
func callsBetween(calls []sandbox.Call, from, to time.Time) int {
	n := 0
	for _, c := range calls {
		if c.At.After(from) && c.At.Before(to) {
			n++
		}
	}
	return n
}

// The restart spec's budget: 50 calls per 2 s, a short interval so that the spec runs in
// seconds; the default 150 requests make three intervals of renewals.
const (
	budgetSpecCalls    = 50
	budgetSpecInterval = 2 * time.Second
)

// budgetSpecRequests is how many requests the restart spec renews: 150, or
// BANKTOKEN_BUDGET_SPEC_REQUESTS (make test-connection-budget runs 1,000).
func budgetSpecRequests() int {
	if n, err := strconv.Atoi(os.Getenv("BANKTOKEN_BUDGET_SPEC_REQUESTS")); err == nil && n > 0 {
		return n
	}
	return 150
}

// withCallBudget sets a connection's call budget.
func withCallBudget(calls int32, interval time.Duration) func(*tokensv1alpha1.BankConnectionSpec) {
	return func(spec *tokensv1alpha1.BankConnectionSpec) {
		spec.CallBudget = &tokensv1alpha1.CallBudget{Calls: ptr.To(calls), Interval: &metav1.Duration{Duration: interval}}
	}
}

// requestsThroughMany creates the requests tokens-<i> for i < n of parity odd (0 or 1)
// through the ClusterBankConnection, spread over the namespaces.
func requestsThroughMany(namespaces []string, connection, scope string, n, odd int) {
	GinkgoHelper()
	for i := odd; i < n; i += 2 {
		Expect(k8sClient.Create(suiteCtx, &tokensv1alpha1.BankTokenRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespaces[i%len(namespaces)], Name: fmt.Sprintf("tokens-%04d", i)},
			Spec: tokensv1alpha1.BankTokenRequestSpec{Scope: scope, ConnectionRef: &tokensv1alpha1.ConnectionReference{
				Kind: tokensv1alpha1.KindClusterBankConnection, Name: connection}}})).To(Succeed())
	}
}

// requestsIn lists the requests of the namespaces.
func requestsIn(namespaces []string) []tokensv1alpha1.BankTokenRequest {
	GinkgoHelper()
	var all []tokensv1alpha1.BankTokenRequest
	for _, ns := range namespaces {
		list := &tokensv1alpha1.BankTokenRequestList{}
		Expect(k8sClient.List(suiteCtx, list, client.InNamespace(ns))).To(Succeed())
		all = append(all, list.Items...)
	}
	return all
}

// budgetSpecTimeout is how long n calls take at the spec's budget, with room to spare.
func budgetSpecTimeout(n int) time.Duration {
	return time.Duration(n/budgetSpecCalls+1)*budgetSpecInterval*2 + 20*time.Second
}

// eventuallyIssued waits until want requests of the namespaces hold a token.
func eventuallyIssued(namespaces []string, want, n int) {
	GinkgoHelper()
	Eventually(func() int {
		ready := 0
		for _, btr := range requestsIn(namespaces) {
			if isReadyReason(&btr, tokensv1alpha1.ReasonTokenIssued) && btr.Status.IssuedAt != nil {
				ready++
			}
		}
		return ready
	}).WithTimeout(budgetSpecTimeout(n)).WithPolling(250 * time.Millisecond).Should(Equal(want))
}

// issuedToken is an output Secret's token and the version it was written at.
type issuedToken struct {
	accessToken string
	version     int
}

// outputSecretsIn are the output Secrets of the namespaces by namespace/name.
func outputSecretsIn(namespaces []string) map[string]issuedToken {
	GinkgoHelper()
	tokens := map[string]issuedToken{}
	for _, ns := range namespaces {
		list := &corev1.SecretList{}
		Expect(k8sClient.List(suiteCtx, list, client.InNamespace(ns),
			client.MatchingLabels{tokensv1alpha1.SecretRoleLabel: tokensv1alpha1.SecretRoleToken})).To(Succeed())
		for _, s := range list.Items {
			version, err := strconv.Atoi(s.ResourceVersion)
			Expect(err).NotTo(HaveOccurred())
			tokens[ns+"/"+s.Name] = issuedToken{accessToken: string(s.Data["access_token"]), version: version}
		}
	}
	return tokens
}

// eventuallyRenewed waits until every output Secret holds a token other than before's and
// every request is Ready, and returns the requests seen not Ready meanwhile.
func eventuallyRenewed(namespaces []string, before map[string]issuedToken, n int) []string {
	GinkgoHelper()
	notReady := map[string]bool{}
	Eventually(func(g Gomega) {
		for _, btr := range requestsIn(namespaces) {
			if !meta.IsStatusConditionTrue(btr.Status.Conditions, tokensv1alpha1.ConditionReady) {
				notReady[btr.Namespace+"/"+btr.Name] = true
			}
		}
		now := outputSecretsIn(namespaces)
		renewed := 0
		for key, token := range before {
			if now[key].accessToken != token.accessToken && now[key].accessToken != "" {
				renewed++
			}
		}
		g.Expect(renewed).To(Equal(len(before)))
		for _, btr := range requestsIn(namespaces) {
			g.Expect(isReadyReason(&btr, tokensv1alpha1.ReasonTokenIssued)).To(BeTrue(), "%s/%s is not Ready", btr.Namespace, btr.Name)
		}
	}).WithTimeout(budgetSpecTimeout(n)).WithPolling(250 * time.Millisecond).Should(Succeed())
	return slices.Sorted(maps.Keys(notReady))
}

// urgencyOrder is the requests' namespace/name, most urgent first, as the budget ranks
// them: the token that expires first, the name breaking ties.
func urgencyOrder(namespaces []string) []string {
	GinkgoHelper()
	requests := requestsIn(namespaces)
	slices.SortFunc(requests, func(a, b tokensv1alpha1.BankTokenRequest) int {
		return cmp.Or(a.Status.ExpiresAt.Compare(b.Status.ExpiresAt.Time), cmp.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name))
	})
	order := make([]string, 0, len(requests))
	for _, btr := range requests {
		order = append(order, btr.Namespace+"/"+btr.Name)
	}
	return order
}

// urgencyKept measures how closely the renewals (the order of their output Secrets'
// writes) followed urgency: the share of pairs renewed in urgency order, and the share of
// the first half renewed that is the more urgent half.
func urgencyKept(urgency []string, renewed map[string]issuedToken) (pairsInOrder, urgentFirst float64) {
	inOrder, pairs := 0, 0
	for i := range urgency {
		for j := i + 1; j < len(urgency); j++ {
			pairs++
			if renewed[urgency[i]].version < renewed[urgency[j]].version {
				inOrder++
			}
		}
	}
	byRenewal := slices.Clone(urgency)
	slices.SortFunc(byRenewal, func(a, b string) int { return cmp.Compare(renewed[a].version, renewed[b].version) })
	half := len(urgency) / 2
	urgentHalf := map[string]bool{}
	for _, key := range urgency[:half] {
		urgentHalf[key] = true
	}
	urgent := 0
	for _, key := range byRenewal[:half] {
		if urgentHalf[key] {
			urgent++
		}
	}
	return float64(inOrder) / float64(max(pairs, 1)), float64(urgent) / float64(max(half, 1))
}

// busiestWindow is the most calls the bank received in any window of interval, and when
// that window starts: every window that starts at a call is tried, which is where a
// window's count can peak.
func busiestWindow(calls []sandbox.Call, interval time.Duration) (most int, from time.Time) {
	times := make([]time.Time, 0, len(calls))
	for _, c := range calls {
		times = append(times, c.At)
	}
	slices.SortFunc(times, time.Time.Compare)
	end := 0
	for start := range times {
		for end < len(times) && times[end].Before(times[start].Add(interval)) {
			end++
		}
		if end-start > most {
			most, from = end-start, times[start]
		}
	}
	return most, from
}
