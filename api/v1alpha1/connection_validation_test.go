package v1alpha1_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// banficoClient is a client every connection case below breaks in exactly one way.
func banficoClient() tokensv1alpha1.BankClient {
	return tokensv1alpha1.BankClient{
		Provider:             tokensv1alpha1.ProviderBanfico,
		Endpoint:             "https://auth.bank.example/realms/openbanking/protocol/openid-connect/token",
		CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: "banfico-client"},
	}
}

func clusterConnection(name string, mutate func(*tokensv1alpha1.BankConnectionSpec)) *tokensv1alpha1.ClusterBankConnection {
	conn := &tokensv1alpha1.ClusterBankConnection{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: tokensv1alpha1.BankConnectionSpec{
			BankClient:        banficoClient(),
			AllowedNamespaces: &tokensv1alpha1.NamespaceGate{Names: []string{"payments"}},
		},
	}
	mutate(&conn.Spec)
	return conn
}

func requestThrough(name string, ref tokensv1alpha1.ConnectionReference) *tokensv1alpha1.BankTokenRequest {
	return &tokensv1alpha1.BankTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       tokensv1alpha1.BankTokenRequestSpec{ConnectionRef: &ref, Scope: "accounts"},
	}
}

var _ = Describe("BankConnection and ClusterBankConnection validation", func() {
	It("accepts a request that names a connection and carries no connection of its own, with no defaults written", func() {
		btr := requestThrough("through-a-connection", tokensv1alpha1.ConnectionReference{Name: "bank"})
		Expect(k8sClient.Create(ctx, btr)).To(Succeed())
		Expect(btr.Spec.ConnectionRef.Kind).To(BeEmpty(), "a server-side default would make Argo CD report the request OutOfSync")
		Expect(btr.Spec.Provider).To(BeEmpty())
	})

	It("accepts a cluster connection with gates and a budget, with no defaults written", func() {
		conn := clusterConnection("gated", func(s *tokensv1alpha1.BankConnectionSpec) {
			s.AllowedNamespaces.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}
			s.AllowedScopes = []string{"accounts", "payments"}
			s.CallBudget = &tokensv1alpha1.CallBudget{Calls: ptr.To[int32](30), Interval: duration("30s")}
		})
		Expect(k8sClient.Create(ctx, conn)).To(Succeed())
		Expect(conn.Spec.GrantSharing).To(BeEmpty())
	})

	It("accepts a namespaced connection without a namespace gate", func() {
		conn := &tokensv1alpha1.BankConnection{
			ObjectMeta: metav1.ObjectMeta{Name: "own-namespace", Namespace: namespace},
			Spec:       tokensv1alpha1.BankConnectionSpec{BankClient: banficoClient(), GrantSharing: tokensv1alpha1.GrantSharingShared},
		}
		Expect(k8sClient.Create(ctx, conn)).To(Succeed())
	})

	It("refuses a namespace gate on a namespaced connection", func() {
		conn := &tokensv1alpha1.BankConnection{
			ObjectMeta: metav1.ObjectMeta{Name: "gated", Namespace: namespace},
			Spec: tokensv1alpha1.BankConnectionSpec{BankClient: banficoClient(),
				AllowedNamespaces: &tokensv1alpha1.NamespaceGate{Names: []string{"other"}}},
		}
		err := k8sClient.Create(ctx, conn)
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("a BankConnection serves the requests of its own namespace only"))
	})

	DescribeTable("refuses an invalid cluster connection with the message a user needs",
		func(mutate func(*tokensv1alpha1.BankConnectionSpec), wantMessage string) {
			err := k8sClient.Create(ctx, clusterConnection("invalid", mutate))
			Expect(err).To(HaveOccurred(), "the apiserver accepted an invalid connection")
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("no provider", func(s *tokensv1alpha1.BankConnectionSpec) { s.Provider = "" },
			"a connection needs provider, endpoint (or issuer) and credentialsSecretRef"),
		Entry("no credentials", func(s *tokensv1alpha1.BankConnectionSpec) { s.CredentialsSecretRef.Name = "" },
			"a connection needs provider, endpoint (or issuer) and credentialsSecretRef"),
		Entry("a grant the provider does not serve", func(s *tokensv1alpha1.BankConnectionSpec) { s.GrantType = tokensv1alpha1.GrantTypePassword },
			"provider Banfico supports only grantType client_credentials"),
		Entry("PrivateKeyJWT without a key", func(s *tokensv1alpha1.BankConnectionSpec) {
			s.ClientAuthentication = tokensv1alpha1.ClientAuthenticationPrivateKeyJWT
		}, "clientAuthentication PrivateKeyJWT needs clientAssertion.privateKeySecretRef"),
		Entry("a revocation endpoint on another host", func(s *tokensv1alpha1.BankConnectionSpec) {
			s.RevocationEndpoint = "https://elsewhere.example/revoke"
		}, "revocationEndpoint must be on the token endpoint's scheme and host"),
		Entry("an allowed scope with a space", func(s *tokensv1alpha1.BankConnectionSpec) { s.AllowedScopes = []string{"accounts payments"} },
			"spec.allowedScopes[0]"),
		Entry("a gate naming an invalid namespace", func(s *tokensv1alpha1.BankConnectionSpec) { s.AllowedNamespaces.Names = []string{"Payments"} },
			"spec.allowedNamespaces.names[0]"),
		Entry("a budget of no calls", func(s *tokensv1alpha1.BankConnectionSpec) {
			s.CallBudget = &tokensv1alpha1.CallBudget{Calls: ptr.To[int32](0)}
		}, "spec.callBudget.calls"),
		Entry("a budget window over a day", func(s *tokensv1alpha1.BankConnectionSpec) {
			s.CallBudget = &tokensv1alpha1.CallBudget{Interval: duration("25h")}
		}, "interval must be from 1s to 24h"),
		Entry("an unknown sharing mode", func(s *tokensv1alpha1.BankConnectionSpec) { s.GrantSharing = "Pooled" },
			`spec.grantSharing: Unsupported value: "Pooled"`),
	)
})
