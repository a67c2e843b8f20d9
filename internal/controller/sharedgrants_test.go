package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// Shared grants against a real apiserver and the sandbox banks: the bank sees one grant
// however many requests read it, every reader holds the current token, the protections of a
// single request (the propagation delay, two live grants at most, one call per renewal
// once refreshes are refused) hold for the shared one, and the grant is revoked when, and
// only when, its last reader goes. The connections are Paymob's (rotating refresh tokens,
// a refresh revokes the access token it was issued with, RFC 7009 revocation) unless the
// spec needs another bank's behaviour.

var _ = Describe("Shared grants", Label(connectionsLabel), func() {
	It("serves 50 requests in two namespaces from one grant: one call per renewal round, the current token in every output Secret at once, the replaced token accepted through the propagation delay, at most two live grants", func() {
		clientID := ownClient(providers.Paymob)
		name := sharedConnectionName()
		namespaces := []string{newNamespace(), newNamespace()}
		applySharedConnection(providers.Paymob, name, admitNames(namespaces...))
		scope := bank.Credentials(providers.Paymob).Scope
		start := time.Now()
		var readers []*tokensv1alpha1.BankTokenRequest
		for i := range 50 {
			readers = append(readers, requestNamed(namespaces[i%2], fmt.Sprintf("reader-%d", i), name, scope))
		}
		holder := holderOf(name, scope)
		token := accessTokenIn(eventuallyReady(holder, tokensv1alpha1.ReasonTokenIssued))
		expectEveryReaderHolds(readers, token, 40*time.Second)
		Expect(callsSince(providers.Paymob, start)).To(HaveLen(1), "the bank was called more than once for 50 requests")
		Expect(bank.LiveGrants(providers.Paymob, clientID)).To(Equal(1))
		Eventually(func() string { return readyCondition(holder).Message }).
			Should(HavePrefix("shared grant of ClusterBankConnection " + name + " for 50 requests; "))
		Expect(getBTR(readers[7]).Status.SharedGrant).To(Equal(&tokensv1alpha1.SharedGrantReference{Namespace: holder.Namespace, Name: holder.Name}))

		// Renewals every 6 to 7 s from here: tokens live 12 s, and the holder leaves the
		// propagation delay and its readers' copy allowance (3 + 2 s) before expiry.
		shortLifetime(providers.Paymob, 12*time.Second)
		workloads := runLateWorkloads(providers.Paymob, clientID, readers...)
		forceRefresh(holder)
		for round := 1; round <= 4; round++ {
			replaced := token
			Eventually(func() string { return tokenIn(holder) }).WithTimeout(15 * time.Second).ShouldNot(Equal(replaced))
			token = tokenIn(holder)
			Expect(callsSince(providers.Paymob, start)).To(HaveLen(1+round), "renewal round %d made more than one call", round)
			lag := expectEveryReaderHolds(readers, token, 5*time.Second)
			Expect(bank.AccessTokenValid(providers.Paymob, replaced)).To(BeTrue(), "the replaced token was refused once every reader held the new one")
			GinkgoWriter.Printf("shared grants: round %d: 1 call, 50 readers hold the new token %s after the holder\n", round, lag.Round(time.Millisecond))
		}
		uses, refused, mostLiveGrants, refusals := workloads.stop()
		GinkgoWriter.Printf("shared grants: 50 readers' workloads: %d uses of a token read %s late, %d refused, at most %d live grants\n",
			uses, workloadLag, refused, mostLiveGrants)
		Expect(uses).To(BeNumerically(">", 0))
		Expect(refusals).To(BeEmpty(), "a workload reading its Secret late was refused the shared token it held")
		Expect(mostLiveGrants).To(BeNumerically("<=", 2), "the bank kept more than the grant in use and the one it replaced")
	})

	It("revokes a shared grant only when its last reader goes: deleting readers one by one leaves it live until the last, then its holder goes and the grant is revoked", func() {
		clientID := ownClient(providers.Paymob)
		name := sharedConnectionName()
		ns := newNamespace()
		applySharedConnection(providers.Paymob, name, admitNames(ns))
		scope := bank.Credentials(providers.Paymob).Scope
		readers := []*tokensv1alpha1.BankTokenRequest{requestNamed(ns, "first", name, scope),
			requestNamed(ns, "second", name, scope), requestNamed(ns, "third", name, scope)}
		holder := holderOf(name, scope)
		token := accessTokenIn(eventuallyReady(holder, tokensv1alpha1.ReasonTokenIssued))
		expectEveryReaderHolds(readers, token, 20*time.Second)
		grant := refreshTokenIn(holder)
		Expect(grant).NotTo(BeEmpty())
		revoked := revokedCalls(providers.Paymob)

		for i, gone := range readers[:2] {
			Expect(k8sClient.Delete(suiteCtx, gone)).To(Succeed())
			eventuallyGone(gone, 10*time.Second)
			Eventually(func() string { return readyCondition(holder).Message }).
				Should(HavePrefix(fmt.Sprintf("shared grant of ClusterBankConnection %s for %d request", name, len(readers)-1-i)))
			Consistently(func(g Gomega) {
				g.Expect(revokedCalls(providers.Paymob)).To(Equal(revoked), "a revocation while readers remain")
				g.Expect(bank.RefreshTokenValid(providers.Paymob, grant)).To(BeTrue())
				g.Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(holder), &tokensv1alpha1.BankTokenRequest{})).To(Succeed())
			}).WithTimeout(workloadLag + 2*time.Second).Should(Succeed())
			for _, kept := range readers[i+1:] {
				Expect(bank.AccessTokenValid(providers.Paymob, tokenIn(kept))).To(BeTrue())
			}
		}

		Expect(k8sClient.Delete(suiteCtx, readers[2])).To(Succeed())
		eventuallyGone(holder, 20*time.Second)
		Expect(revokedCalls(providers.Paymob)).To(BeNumerically(">", revoked), "the last reader went and nothing was revoked")
		Expect(bank.RefreshTokenValid(providers.Paymob, grant)).To(BeFalse())
		Expect(bank.AccessTokenValid(providers.Paymob, token)).To(BeFalse())
		Expect(bank.LiveGrants(providers.Paymob, clientID)).To(BeZero(), "a grant outlived its last reader")
	})

	It("holds one grant per scope: requests asking for the same scope values in any order share one, another scope has its own", func() {
		clientID := ownClient(providers.Paymob)
		name := sharedConnectionName()
		ns := newNamespace()
		applySharedConnection(providers.Paymob, name, admitNames(ns))
		start := time.Now()
		readWrite := requestNamed(ns, "read-write", name, "read write")
		writeRead := requestNamed(ns, "write-read", name, "write read read")
		readOnly := requestNamed(ns, "read-only", name, "read")
		for _, btr := range []*tokensv1alpha1.BankTokenRequest{readWrite, writeRead, readOnly} {
			eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		}
		Expect(tokenIn(writeRead)).To(Equal(tokenIn(readWrite)))
		Expect(tokenIn(readOnly)).NotTo(Equal(tokenIn(readWrite)))
		Expect(string(outputSecret(readOnly).Data[tokensv1alpha1.SecretKeyScope])).To(Equal("read"))
		Expect(holdersOf(name)).To(ConsistOf(holderOf(name, "read write").Name, holderOf(name, "read").Name))
		Expect(callsSince(providers.Paymob, start)).To(HaveLen(2))
		Expect(bank.LiveGrants(providers.Paymob, clientID)).To(Equal(2))
		// The connection's status counts the three requests in their namespace, not the
		// holders the operator made beside its Secrets.
		Eventually(func() []any {
			status := clusterConnectionStatus(name)
			return []any{status.Requests, status.Namespaces}
		}).WithTimeout(10 * time.Second).Should(Equal([]any{int32(3), []string{ns}}))
	})

	It("takes the copy away from a reader its namespace gate no longer admits, leaves the other readers theirs, and revokes nothing", func() {
		clientID := ownClient(providers.Paymob)
		name := sharedConnectionName()
		leaving, staying := newNamespace(), newNamespace()
		applySharedConnection(providers.Paymob, name, admitNames(leaving, staying))
		scope := bank.Credentials(providers.Paymob).Scope
		refused, kept := requestNamed(leaving, "tokens", name, scope), requestNamed(staying, "tokens", name, scope)
		token := accessTokenIn(eventuallyReady(refused, tokensv1alpha1.ReasonTokenIssued))
		Expect(accessTokenIn(eventuallyReady(kept, tokensv1alpha1.ReasonTokenIssued))).To(Equal(token))
		revoked := revokedCalls(providers.Paymob)

		updateConnection(name, func(spec *tokensv1alpha1.BankConnectionSpec) { spec.AllowedNamespaces.Names = []string{staying} })
		eventuallyRefused(refused, tokensv1alpha1.ReasonNamespaceNotAdmitted)
		Eventually(func() string { return tokenIn(refused) }).Should(BeEmpty(), "the refused reader kept the shared token")
		Expect(getBTR(refused).Status.SharedGrant).To(BeNil())
		Consistently(func(g Gomega) {
			g.Expect(revokedCalls(providers.Paymob)).To(Equal(revoked), "a reader's refusal revoked the grant others read")
			g.Expect(tokenIn(kept)).To(Equal(token))
			g.Expect(bank.AccessTokenValid(providers.Paymob, token)).To(BeTrue())
		}).WithTimeout(workloadLag + 2*time.Second).Should(Succeed())
		Expect(bank.LiveGrants(providers.Paymob, clientID)).To(Equal(1))
	})

	It("switches a connection from PerRequest to Shared and back without a moment where an output Secret lacks a token the bank accepts, and revokes the grants each switch leaves unused", func() {
		clientID := ownClient(providers.Paymob)
		name := sharedConnectionName()
		ns := newNamespace()
		applySharedConnection(providers.Paymob, name, admitNames(ns), grantSharing(tokensv1alpha1.GrantSharingPerRequest))
		scope := bank.Credentials(providers.Paymob).Scope
		readers := []*tokensv1alpha1.BankTokenRequest{requestNamed(ns, "first", name, scope),
			requestNamed(ns, "second", name, scope), requestNamed(ns, "third", name, scope)}
		for _, btr := range readers {
			eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		}
		Expect(bank.LiveGrants(providers.Paymob, clientID)).To(Equal(3))
		watch := watchTokensAccepted(providers.Paymob, readers)
		workloads := runLateWorkloads(providers.Paymob, clientID, readers...)
		Eventually(workloads.usingEvery).Should(BeTrue(), "the workloads must use the readers' own tokens before the switch")

		updateConnection(name, grantSharing(tokensv1alpha1.GrantSharingShared))
		holder := holderOf(name, scope)
		token := accessTokenIn(eventuallyReady(holder, tokensv1alpha1.ReasonTokenIssued))
		expectEveryReaderHolds(readers, token, 20*time.Second)
		Eventually(func() int { return bank.LiveGrants(providers.Paymob, clientID) }).
			Should(Equal(1), "the readers' own grants were not revoked once they shared one")

		updateConnection(name, grantSharing(tokensv1alpha1.GrantSharingPerRequest))
		Eventually(func() map[string]bool {
			distinct := map[string]bool{}
			for _, btr := range readers {
				distinct[tokenIn(btr)] = true
			}
			delete(distinct, token)
			return distinct
		}).Should(HaveLen(len(readers)), "the readers did not each obtain a token of their own")
		eventuallyGone(holder, 20*time.Second)
		Eventually(func() int { return bank.LiveGrants(providers.Paymob, clientID) }).Should(Equal(3))
		Expect(bank.AccessTokenValid(providers.Paymob, token)).To(BeFalse(), "the shared grant outlived the switch back")

		Expect(watch.stop()).To(BeEmpty(), "an output Secret held no token the bank accepted")
		_, _, _, refusals := workloads.stop()
		Expect(refusals).To(BeEmpty(), "a workload reading its Secret late was refused the token it held")
	})

	It("renews a shared grant at a bank that refuses every refresh with one call per renewal from the third renewal on, however many readers", func() {
		shortLifetime(providers.RAKBank, 6*time.Second)
		bank.SetFault(providers.RAKBank, sandbox.FaultInvalidGrantOnRefresh)
		DeferCleanup(func() { bank.SetFault(providers.RAKBank, sandbox.NoFault) })
		name := sharedConnectionName()
		ns := newNamespace()
		applySharedConnection(providers.RAKBank, name, admitNames(ns))
		scope := bank.Credentials(providers.RAKBank).Scope
		start := time.Now()
		var readers []*tokensv1alpha1.BankTokenRequest
		for i := range 5 {
			readers = append(readers, requestNamed(ns, fmt.Sprintf("reader-%d", i), name, scope))
		}
		holder := holderOf(name, scope)
		Eventually(func() []int { return callsPerIssue(callsSince(providers.RAKBank, start)) }).
			WithTimeout(45*time.Second).WithPolling(time.Second).Should(HaveLen(6), "the first issue and five renewals")
		Expect(callsPerIssue(callsSince(providers.RAKBank, start))).To(Equal([]int{1, 2, 2, 1, 1, 1}),
			"bank calls per issue: the first, then one call per renewal from the third renewal on")
		expectEveryReaderHolds(readers, tokenIn(holder), 10*time.Second)
		Expect(readyCondition(holder).Message).To(ContainSubstring("renewing with the primary grant"))
	})
})

// sharedConnectionName reserves a ClusterBankConnection name, as clusterConnectionName does,
// and checks when the spec ends that the connection's holders went with their last reader
// (before the connection itself goes: its client revokes their grants).
func sharedConnectionName() string {
	name := clusterConnectionName()
	DeferCleanup(func() {
		Eventually(func() []string { return holdersOf(name) }).WithTimeout(30*time.Second).
			Should(BeEmpty(), "a holder outlived its readers")
	})
	return name
}

// applySharedConnection creates the ClusterBankConnection name to the sandbox bank
// bankName, sharing grants unless mutate says otherwise, with its Secrets in the cluster
// connection namespace.
func applySharedConnection(bankName providers.Name, name string, mutate ...func(*tokensv1alpha1.BankConnectionSpec)) {
	GinkgoHelper()
	sandboxed := harness.NewSandboxRequest(bank, bankName, clusterConnectionNamespace, name)
	for _, o := range []client.Object{sandboxed.Credentials, sandboxed.CABundle, sandboxed.ClientCertificate} {
		if secret, ok := o.(*corev1.Secret); ok && secret == nil {
			continue
		}
		Expect(harness.CreateOrUpdate(suiteCtx, k8sClient, o)).To(Succeed())
	}
	conn := &tokensv1alpha1.ClusterBankConnection{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: tokensv1alpha1.BankConnectionSpec{BankClient: sandboxed.Request.Spec.BankClient, GrantSharing: tokensv1alpha1.GrantSharingShared}}
	for _, m := range mutate {
		m(&conn.Spec)
	}
	Expect(k8sClient.Create(suiteCtx, conn)).To(Succeed())
}

// grantSharing sets a connection's grantSharing.
func grantSharing(sharing tokensv1alpha1.GrantSharing) func(*tokensv1alpha1.BankConnectionSpec) {
	return func(spec *tokensv1alpha1.BankConnectionSpec) { spec.GrantSharing = sharing }
}

// updateConnection changes the ClusterBankConnection name's spec.
func updateConnection(name string, mutate func(*tokensv1alpha1.BankConnectionSpec)) {
	GinkgoHelper()
	Eventually(func() error {
		conn := &tokensv1alpha1.ClusterBankConnection{}
		if err := k8sClient.Get(suiteCtx, types.NamespacedName{Name: name}, conn); err != nil {
			return err
		}
		mutate(&conn.Spec)
		return k8sClient.Update(suiteCtx, conn)
	}).Should(Succeed())
}

// holderOf is the holder of the ClusterBankConnection connection's grant for scope (its key).
func holderOf(connection, scope string) *tokensv1alpha1.BankTokenRequest {
	return &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: clusterConnectionNamespace,
		Name: sharedGrantHolderName(tokensv1alpha1.KindClusterBankConnection, connection, scope)}}
}

// holdersOf names the holders of the ClusterBankConnection connection's grants.
func holdersOf(connection string) []string {
	list := &tokensv1alpha1.BankTokenRequestList{}
	Expect(k8sClient.List(suiteCtx, list, client.InNamespace(clusterConnectionNamespace), client.MatchingLabels{
		tokensv1alpha1.ConnectionLabel: connectionLabelValue(tokensv1alpha1.KindClusterBankConnection, connection)})).To(Succeed())
	var names []string
	for _, btr := range list.Items {
		names = append(names, btr.Name)
	}
	return names
}

// forceRefresh asks for a new token for btr at once.
func forceRefresh(btr *tokensv1alpha1.BankTokenRequest) {
	GinkgoHelper()
	Eventually(func() error {
		current := getBTR(btr)
		if current.Annotations == nil {
			current.Annotations = map[string]string{}
		}
		current.Annotations[tokensv1alpha1.RefreshRequestedAtAnnotation] = time.Now().Format(time.RFC3339Nano)
		return k8sClient.Update(suiteCtx, current)
	}).Should(Succeed())
}

// tokenIn is the access token in btr's output Secret; "" when there is none.
func tokenIn(btr *tokensv1alpha1.BankTokenRequest) string {
	secret := &corev1.Secret{}
	err := k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: btr.Namespace, Name: outputSecretName(btr)}, secret)
	if apierrors.IsNotFound(err) {
		return ""
	}
	Expect(err).NotTo(HaveOccurred())
	token := accessTokenIn(secret)
	seenTokens.add(token)
	return token
}

// seenTokens hands each token to the leak check once, however often the specs read it.
var seenTokens = &distinctSecrets{seen: map[string]bool{}}

type distinctSecrets struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (d *distinctSecrets) add(v string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.seen[v] {
		d.seen[v] = true
		seenSecrets.add(v)
	}
}

// expectEveryReaderHolds waits for every reader's output Secret to hold token, and returns
// how long that took.
func expectEveryReaderHolds(readers []*tokensv1alpha1.BankTokenRequest, token string, within time.Duration) time.Duration {
	GinkgoHelper()
	start := time.Now()
	Eventually(func() []string {
		var behind []string
		for _, btr := range readers {
			if tokenIn(btr) != token {
				behind = append(behind, btr.Namespace+"/"+btr.Name)
			}
		}
		return behind
	}).WithTimeout(within).WithPolling(50*time.Millisecond).Should(BeEmpty(), "readers without the holder's current token")
	return time.Since(start)
}

// callsPerIssue splits token calls at the accepted ones: how many calls each issue took.
func callsPerIssue(calls []sandbox.Call) []int {
	var perIssue []int
	n := 0
	for _, c := range calls {
		n++
		if c.Accepted() {
			perIssue = append(perIssue, n)
			n = 0
		}
	}
	return perIssue
}

// lateWorkloads are workloads that each use the token their request's output Secret held
// workloadLag ago, as a mounted Secret is seen late, every 100 ms, and count what the bank
// refuses. They learn of each change of the Secret from a watch, within milliseconds of the
// write: sampling it on a tick instead would make them read later than workloadLag by up to
// a tick. Each time, they also count the grants the bank keeps live for the client.
type lateWorkloads struct {
	bank     providers.Name
	clientID string
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	// expected is how many Secrets the workloads read.
	expected int

	mu sync.Mutex
	// seen is each output Secret's tokens ("<namespace>/<name>"), oldest first.
	seen map[string][]observedToken
	// using are the Secrets whose workload has used a token.
	using          map[string]bool
	uses, refused  int
	refusals       []string
	mostLiveGrants int
}

// runLateWorkloads starts a late workload for each request; stop ends them.
func runLateWorkloads(bankName providers.Name, clientID string, requests ...*tokensv1alpha1.BankTokenRequest) *lateWorkloads {
	GinkgoHelper()
	ctx, cancel := context.WithCancel(suiteCtx)
	l := &lateWorkloads{bank: bankName, clientID: clientID, cancel: cancel, seen: map[string][]observedToken{}, using: map[string]bool{}}
	watcher, err := client.NewWithWatch(cfg, client.Options{Scheme: k8sClient.Scheme()})
	Expect(err).NotTo(HaveOccurred())
	secrets := map[string]bool{}
	namespaces := map[string]bool{}
	for _, btr := range requests {
		secrets[btr.Namespace+"/"+outputSecretName(btr)] = true
		namespaces[btr.Namespace] = true
	}
	l.expected = len(secrets)
	for ns := range namespaces {
		w, err := watcher.Watch(ctx, &corev1.SecretList{}, client.InNamespace(ns))
		Expect(err).NotTo(HaveOccurred())
		l.wg.Add(1)
		go func() {
			defer GinkgoRecover()
			defer l.wg.Done()
			defer w.Stop()
			for e := range w.ResultChan() {
				if secret, ok := e.Object.(*corev1.Secret); ok && secrets[secret.Namespace+"/"+secret.Name] {
					l.observe(secret.Namespace+"/"+secret.Name, accessTokenIn(secret))
				}
			}
		}()
	}
	l.wg.Add(1)
	go func() {
		defer GinkgoRecover()
		defer l.wg.Done()
		l.use(ctx)
	}()
	DeferCleanup(l.stop)
	return l
}

func (l *lateWorkloads) observe(secret, token string) {
	seenTokens.add(token)
	l.mu.Lock()
	defer l.mu.Unlock()
	if seen := l.seen[secret]; len(seen) == 0 || seen[len(seen)-1].token != token {
		l.seen[secret] = append(seen, observedToken{time.Now(), token})
	}
}

// use uses, every 100 ms until ctx ends, the token each Secret held workloadLag ago.
func (l *lateWorkloads) use(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			l.mu.Lock()
			// The clock is read, not taken from the tick: a tick delivered late (a busy
			// machine, the lock held by observe) would judge against the bank now a token the
			// workload held long ago.
			now := time.Now()
			for secret, seen := range l.seen {
				held := ""
				for _, o := range seen {
					if o.at.After(now.Add(-workloadLag)) {
						break
					}
					held = o.token
				}
				if held == "" {
					continue
				}
				l.uses++
				l.using[secret] = true
				if !bank.AccessTokenValid(l.bank, held) {
					l.refused++
					l.refusals = append(l.refusals, secret+" at "+now.Format(time.StampMilli))
				}
			}
			l.mostLiveGrants = max(l.mostLiveGrants, bank.LiveGrants(l.bank, l.clientID))
			l.mu.Unlock()
		}
	}
}

// usingEvery says whether every workload is using a token: each has seen its Secret for
// workloadLag at least.
func (l *lateWorkloads) usingEvery() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.using) == l.expected
}

// stop ends the workloads, and returns what they counted.
func (l *lateWorkloads) stop() (uses, refused, mostLiveGrants int, refusals []string) {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.uses, l.refused, l.mostLiveGrants, l.refusals
}

// tokensAccepted checks, every 100 ms until stopped, that each request's output Secret holds
// a token the bank accepts at that moment.
type tokensAccepted struct {
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	failures []string
}

func watchTokensAccepted(bankName providers.Name, requests []*tokensv1alpha1.BankTokenRequest) *tokensAccepted {
	t := &tokensAccepted{done: make(chan struct{})}
	t.wg.Add(1)
	go func() {
		defer GinkgoRecover()
		defer t.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-t.done:
				return
			case <-tick.C:
				t.check(bankName, requests)
			}
		}
	}()
	DeferCleanup(t.stop)
	return t
}

func (t *tokensAccepted) check(bankName providers.Name, requests []*tokensv1alpha1.BankTokenRequest) {
	for _, btr := range requests {
		if token := tokenIn(btr); token == "" || !bank.AccessTokenValid(bankName, token) {
			t.mu.Lock()
			t.failures = append(t.failures, fmt.Sprintf("%s at %s (empty: %t)", btr.Name, time.Now().Format(time.RFC3339Nano), token == ""))
			t.mu.Unlock()
		}
	}
}

func (t *tokensAccepted) stop() []string {
	select {
	case <-t.done:
	default:
		close(t.done)
	}
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failures
}
