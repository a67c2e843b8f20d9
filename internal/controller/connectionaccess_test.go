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
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// Requests that get their bank client from a connection: who may use it, what they get,
// and what they lose when they may no longer. The connections here are Paymob's (password
// grant, rotating refresh tokens, RFC 7009 revocation), so that a grant taken away can be
// seen revoked at the bank.

var _ = Describe("Connections", Label(connectionsLabel), func() {
	It("issues a token through a ClusterBankConnection whose Secrets exist only in the cluster connection namespace, and no Secret of the tenant namespace holds the client secret", func() {
		ownClient(providers.Paymob)
		name := clusterConnectionName()
		ns := newNamespace()
		applyClusterConnection(name, admitNames(ns))
		creds := bank.Credentials(providers.Paymob)
		btr := requestThrough(ns, tokensv1alpha1.KindClusterBankConnection, name, creds.Scope)
		output := eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Expect(bank.AccessTokenValid(providers.Paymob, accessTokenIn(output))).To(BeTrue())
		Expect(getBTR(btr).Spec.BankClient).To(Equal(tokensv1alpha1.BankClient{}), "the connection's client was written into the request")

		secrets := &corev1.SecretList{}
		Expect(k8sClient.List(suiteCtx, secrets, client.InNamespace(ns))).To(Succeed())
		Expect(secrets.Items).NotTo(BeEmpty(), "the scan must have Secrets to look into")
		for _, s := range secrets.Items {
			for key, value := range s.Data {
				Expect(strings.Contains(string(value), creds.ClientSecret) || strings.Contains(string(value), creds.Password)).
					To(BeFalse(), "Secret %s/%s key %s holds a credential of the connection", ns, s.Name, key)
			}
		}
	})

	It("refuses before any call a request from a namespace outside the gate, by name and by selector, and one asking for a scope outside allowedScopes", func() {
		name := clusterConnectionName()
		outside := newNamespace()
		admitted := newNamespace()
		setNamespaceLabel(admitted, name)
		setNamespaceLabel(outside, "another-connection")
		scope := bank.Credentials(providers.Paymob).Scope
		applyClusterConnection(name, func(spec *tokensv1alpha1.BankConnectionSpec) {
			spec.AllowedNamespaces = &tokensv1alpha1.NamespaceGate{Names: []string{"a-namespace-that-is-not-" + outside},
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{connectionLabel: name}}}
			spec.AllowedScopes = strings.Fields(scope)
		})
		start := time.Now()
		outsideGate := requestThrough(outside, tokensv1alpha1.KindClusterBankConnection, name, scope)
		outsideScopes := requestThrough(admitted, tokensv1alpha1.KindClusterBankConnection, name, scope+" admin")

		Expect(eventuallyRefused(outsideGate, tokensv1alpha1.ReasonNamespaceNotAdmitted)).To(And(
			ContainSubstring("ClusterBankConnection "+name+" does not admit namespace "+outside),
			ContainSubstring("allowedNamespaces.names"), ContainSubstring("allowedNamespaces.selector")))
		Expect(eventuallyRefused(outsideScopes, tokensv1alpha1.ReasonScopeNotAdmitted)).To(And(
			ContainSubstring("ClusterBankConnection "+name), ContainSubstring(`"admin"`), ContainSubstring("allowedScopes")))
		Consistently(func() []sandbox.Call { return callsSince(providers.Paymob, start) }).
			WithTimeout(2*time.Second).Should(BeEmpty(), "a refused request reached the bank")
		for _, refused := range []*tokensv1alpha1.BankTokenRequest{outsideGate, outsideScopes} {
			Expect(getBTR(refused).Status.FailedAttempts).To(BeZero())
			Expect(apierrors.IsNotFound(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(refused), &corev1.Secret{}))).
				To(BeTrue(), "a Secret was written for a refused request")
		}
	})

	It("takes the token away and revokes the grant when the namespace leaves the gate: its label removed, or its name removed from allowedNamespaces", func() {
		clientID := ownClient(providers.Paymob)
		name := clusterConnectionName()
		bySelector, byName := newNamespace(), newNamespace()
		setNamespaceLabel(bySelector, name)
		applyClusterConnection(name, func(spec *tokensv1alpha1.BankConnectionSpec) {
			spec.AllowedNamespaces = &tokensv1alpha1.NamespaceGate{Names: []string{byName},
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{connectionLabel: name}}}
		})
		scope := bank.Credentials(providers.Paymob).Scope
		viaSelector := requestThrough(bySelector, tokensv1alpha1.KindClusterBankConnection, name, scope)
		viaName := requestThrough(byName, tokensv1alpha1.KindClusterBankConnection, name, scope)
		tokenViaSelector := accessTokenIn(eventuallyReady(viaSelector, tokensv1alpha1.ReasonTokenIssued))
		tokenViaName := accessTokenIn(eventuallyReady(viaName, tokensv1alpha1.ReasonTokenIssued))
		grantViaSelector, grantViaName := refreshTokenIn(viaSelector), refreshTokenIn(viaName)
		Expect(grantViaSelector).NotTo(BeEmpty())
		revoked := revokedCalls(providers.Paymob)

		setNamespaceLabel(bySelector, "")
		expectAccessTakenAway(viaSelector, tokenViaSelector, grantViaSelector)
		Expect(revokedCalls(providers.Paymob)).To(BeNumerically(">", revoked), "the revoker recorded no revocation")
		Expect(accessTokenIn(outputSecret(viaName))).To(Equal(tokenViaName), "the namespace still admitted lost its token too")
		Expect(bank.AccessTokenValid(providers.Paymob, tokenViaName)).To(BeTrue())

		conn := &tokensv1alpha1.ClusterBankConnection{}
		Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Name: name}, conn)).To(Succeed())
		conn.Spec.AllowedNamespaces.Names = nil
		Expect(k8sClient.Update(suiteCtx, conn)).To(Succeed())
		expectAccessTakenAway(viaName, tokenViaName, grantViaName)
		Expect(bank.LiveGrants(providers.Paymob, clientID)).To(BeZero(), "a grant outlived the access")
	})

	It("serves a BankConnection to the requests of its own namespace only", func() {
		owner, other := newNamespace(), newNamespace()
		sandboxed := harness.NewSandboxRequest(bank, providers.Paymob, owner, "paymob")
		for _, o := range []client.Object{sandboxed.Credentials, sandboxed.CABundle} {
			Expect(harness.CreateOrUpdate(suiteCtx, k8sClient, o)).To(Succeed())
		}
		Expect(k8sClient.Create(suiteCtx, &tokensv1alpha1.BankConnection{
			ObjectMeta: metav1.ObjectMeta{Namespace: owner, Name: "paymob"},
			Spec:       tokensv1alpha1.BankConnectionSpec{BankClient: sandboxed.Request.Spec.BankClient},
		})).To(Succeed())
		scope := bank.Credentials(providers.Paymob).Scope
		start := time.Now()
		foreign := requestThrough(other, tokensv1alpha1.KindBankConnection, "paymob", scope)
		Expect(eventuallyRefused(foreign, tokensv1alpha1.ReasonConnectionNotFound)).To(ContainSubstring("BankConnection " + other + "/paymob"))
		Consistently(func() []sandbox.Call { return callsSince(providers.Paymob, start) }).WithTimeout(time.Second).Should(BeEmpty())

		own := requestThrough(owner, tokensv1alpha1.KindBankConnection, "paymob", scope)
		eventuallyReady(own, tokensv1alpha1.ReasonTokenIssued)
		Expect(meta.IsStatusConditionTrue(getBTR(foreign).Status.Conditions, tokensv1alpha1.ConditionStalled)).To(BeTrue())
	})

	It("renews every request of a ClusterBankConnection at once when the connection's credentials Secret changes", func() {
		ownClient(providers.Paymob)
		name := clusterConnectionName()
		first, second := newNamespace(), newNamespace()
		applyClusterConnection(name, admitNames(first, second))
		scope := bank.Credentials(providers.Paymob).Scope
		requests := []*tokensv1alpha1.BankTokenRequest{
			requestThrough(first, tokensv1alpha1.KindClusterBankConnection, name, scope),
			requestThrough(second, tokensv1alpha1.KindClusterBankConnection, name, scope),
		}
		var tokens []string
		for _, btr := range requests {
			tokens = append(tokens, accessTokenIn(eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)))
		}

		rotated := bank.RotateClientSecret(providers.Paymob)
		seenSecrets.add(rotated.ClientSecret)
		credentials := &corev1.Secret{}
		Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: clusterConnectionNamespace, Name: name + "-credentials"}, credentials)).To(Succeed())
		credentials.Data[tokensv1alpha1.DefaultClientSecretKey] = []byte(rotated.ClientSecret)
		Expect(k8sClient.Update(suiteCtx, credentials)).To(Succeed())
		for i, btr := range requests {
			Eventually(func() string { return accessTokenIn(outputSecret(btr)) }).WithTimeout(10*time.Second).
				ShouldNot(Equal(tokens[i]), "request %d was not renewed with the new credentials", i)
			Expect(bank.AccessTokenValid(providers.Paymob, accessTokenIn(outputSecret(btr)))).To(BeTrue())
		}
	})

	// The suite's short resync would hide a watch that misses them: the watches' mappings are
	// asked directly, against the manager's cache.
	It("maps a change of a connection, of a Secret it reads or of a Namespace's labels to exactly the requests that depend on it", func() {
		name := clusterConnectionName()
		admitted, other := newNamespace(), newNamespace()
		applyClusterConnection(name, admitNames(admitted))
		scope := bank.Credentials(providers.Paymob).Scope
		through := requestThrough(admitted, tokensv1alpha1.KindClusterBankConnection, name, scope)
		inline := applyBank(other, providers.Paymob)
		eventuallyReady(through, tokensv1alpha1.ReasonTokenIssued)
		eventuallyReady(inline, tokensv1alpha1.ReasonTokenIssued)
		want := []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(through)}}

		Expect(reconciler.references.WatchedNamespaces()).To(ContainElement(clusterConnectionNamespace))
		Expect(reconciler.requestsReferencing(managerCache)(suiteCtx, "Secret", clusterConnectionNamespace, name+"-credentials")).To(Equal(want))
		conn := &tokensv1alpha1.ClusterBankConnection{ObjectMeta: metav1.ObjectMeta{Name: name}}
		Expect(requestsNamingConnection(managerCache)(suiteCtx, conn)).To(Equal(want))
		Expect(requestsThroughClusterConnections(managerCache)(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: admitted}})).To(Equal(want))
		Expect(requestsThroughClusterConnections(managerCache)(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}})).To(BeEmpty())
		Expect(reconciler.requestsReferencing(managerCache)(suiteCtx, "Secret", other, "paymob-credentials")).
			To(Equal([]reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(inline)}}))
	})

	It("stalls a request naming a missing connection without a call, and issues as soon as the connection is created", func() {
		name := clusterConnectionName()
		ns := newNamespace()
		start := time.Now()
		btr := requestThrough(ns, tokensv1alpha1.KindClusterBankConnection, name, bank.Credentials(providers.Paymob).Scope)
		Expect(eventuallyRefused(btr, tokensv1alpha1.ReasonConnectionNotFound)).To(ContainSubstring("ClusterBankConnection " + name))
		Consistently(func() []sandbox.Call { return callsSince(providers.Paymob, start) }).WithTimeout(time.Second).Should(BeEmpty())

		applyClusterConnection(name, admitNames(ns))
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Expect(meta.FindStatusCondition(getBTR(btr).Status.Conditions, tokensv1alpha1.ConditionStalled)).To(BeNil())
	})

	It("takes the token away when the connection is deleted, says its grant stays live, and lets the request's deletion go at once", func() {
		name := clusterConnectionName()
		ns := newNamespace()
		applyClusterConnection(name, admitNames(ns))
		btr := requestThrough(ns, tokensv1alpha1.KindClusterBankConnection, name, bank.Credentials(providers.Paymob).Scope)
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		Expect(refreshTokenIn(btr)).NotTo(BeEmpty())

		Expect(k8sClient.Delete(suiteCtx, &tokensv1alpha1.ClusterBankConnection{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
		Expect(eventuallyRefused(btr, tokensv1alpha1.ReasonConnectionNotFound)).To(ContainSubstring("the connection is gone"))
		Expect(accessTokenIn(outputSecret(btr))).To(BeEmpty())
		Expect(refreshTokenIn(btr)).To(BeEmpty())
		Eventually(func() []string { return warningReasons(btr) }).Should(ContainElement(eventGrantsLeftLive))

		Expect(k8sClient.Delete(suiteCtx, btr)).To(Succeed())
		eventuallyGone(btr, 5*time.Second)
	})
})

// connectionLabel is the Namespace label the specs' selectors admit by.
const connectionLabel = "banktoken-test/connection"

var connectionCounter int

// clusterConnectionName reserves a ClusterBankConnection name for the spec. The connection
// and its credentials Secret are deleted when the spec ends, after its requests (called
// before newNamespace, as DeferCleanup runs last-in, first-out): their deletion revokes
// their grants with the connection's client.
func clusterConnectionName() string {
	connectionCounter++
	name := fmt.Sprintf("paymob-shared-%d-%d", connectionCounter, time.Now().UnixNano()%100000)
	DeferCleanup(func() {
		_ = k8sClient.Delete(suiteCtx, &tokensv1alpha1.ClusterBankConnection{ObjectMeta: metav1.ObjectMeta{Name: name}})
		_ = k8sClient.Delete(suiteCtx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: clusterConnectionNamespace, Name: name + "-credentials"}})
	})
	return name
}

// applyClusterConnection creates the ClusterBankConnection name to the sandbox's Paymob,
// with its credentials Secret and CA bundle in the cluster connection namespace only.
func applyClusterConnection(name string, mutate ...func(*tokensv1alpha1.BankConnectionSpec)) {
	GinkgoHelper()
	sandboxed := harness.NewSandboxRequest(bank, providers.Paymob, clusterConnectionNamespace, name)
	for _, o := range []client.Object{sandboxed.Credentials, sandboxed.CABundle} {
		Expect(harness.CreateOrUpdate(suiteCtx, k8sClient, o)).To(Succeed())
	}
	conn := &tokensv1alpha1.ClusterBankConnection{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: tokensv1alpha1.BankConnectionSpec{BankClient: sandboxed.Request.Spec.BankClient}}
	for _, m := range mutate {
		m(&conn.Spec)
	}
	Expect(k8sClient.Create(suiteCtx, conn)).To(Succeed())
}

// admitNames is a gate that admits namespaces by name.
func admitNames(namespaces ...string) func(*tokensv1alpha1.BankConnectionSpec) {
	return func(spec *tokensv1alpha1.BankConnectionSpec) {
		spec.AllowedNamespaces = &tokensv1alpha1.NamespaceGate{Names: namespaces}
	}
}

// requestThrough creates a request in namespace for scope through the connection kind/name.
func requestThrough(namespace, kind, connection, scope string) *tokensv1alpha1.BankTokenRequest {
	GinkgoHelper()
	btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "tokens"},
		Spec: tokensv1alpha1.BankTokenRequestSpec{ConnectionRef: &tokensv1alpha1.ConnectionReference{Kind: kind, Name: connection}, Scope: scope}}
	Expect(k8sClient.Create(suiteCtx, btr)).To(Succeed())
	return btr
}

// setNamespaceLabel sets connectionLabel on namespace to value; "" removes it.
func setNamespaceLabel(namespace, value string) {
	GinkgoHelper()
	ns := &corev1.Namespace{}
	Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Name: namespace}, ns)).To(Succeed())
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	if value == "" {
		delete(ns.Labels, connectionLabel)
	} else {
		ns.Labels[connectionLabel] = value
	}
	Expect(k8sClient.Update(suiteCtx, ns)).To(Succeed())
}

// eventuallyRefused waits for btr to be Stalled, and not Ready, for reason, and returns the
// message.
func eventuallyRefused(btr *tokensv1alpha1.BankTokenRequest, reason string) string {
	GinkgoHelper()
	var message string
	Eventually(func(g Gomega) {
		conditions := getBTR(btr).Status.Conditions
		stalled := meta.FindStatusCondition(conditions, tokensv1alpha1.ConditionStalled)
		g.Expect(stalled).NotTo(BeNil())
		g.Expect(stalled.Reason).To(Equal(reason))
		ready := meta.FindStatusCondition(conditions, tokensv1alpha1.ConditionReady)
		g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(ready.Reason).To(Equal(reason))
		message = stalled.Message
	}).Should(Succeed())
	return message
}

// expectAccessTakenAway waits for btr to be refused its namespace, and checks that its
// output Secret no longer holds the token, and that the bank accepts neither its access
// token nor its grant any more.
func expectAccessTakenAway(btr *tokensv1alpha1.BankTokenRequest, token, grant string) {
	GinkgoHelper()
	eventuallyRefused(btr, tokensv1alpha1.ReasonNamespaceNotAdmitted)
	Eventually(func() string { return accessTokenIn(outputSecret(btr)) }).Should(BeEmpty(), "the output Secret still holds the token")
	Expect(refreshTokenIn(btr)).To(BeEmpty(), "the refresh token was kept")
	Eventually(func() bool { return bank.RefreshTokenValid(providers.Paymob, grant) }).Should(BeFalse(), "the grant was not revoked")
	Expect(bank.AccessTokenValid(providers.Paymob, token)).To(BeFalse(), "the bank still accepts the token taken away")
	Expect(readyCondition(btr).Message).To(ContainSubstring("grant(s) revoked at the bank"))
}
