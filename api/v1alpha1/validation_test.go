package v1alpha1_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// validPaymob is a request every case below breaks in exactly one way.
func validPaymob(name string) *tokensv1alpha1.BankTokenRequest {
	return &tokensv1alpha1.BankTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: tokensv1alpha1.BankTokenRequestSpec{
			BankClient: tokensv1alpha1.BankClient{
				Provider:             tokensv1alpha1.ProviderPaymob,
				Endpoint:             "https://payouts.example/api/secure/o/token/",
				CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: "paymob-credentials"},
			},
			Scope: "read write",
		},
	}
}

type spec = tokensv1alpha1.BankTokenRequestSpec

func endpoint(url string) func(*spec) { return func(s *spec) { s.Endpoint = url } }

// headers sets the spec's headers from name, value pairs.
func headers(nameValues ...string) func(*spec) {
	return func(s *spec) {
		for i := 0; i+1 < len(nameValues); i += 2 {
			s.Headers = append(s.Headers, tokensv1alpha1.HTTPHeader{Name: nameValues[i], Value: nameValues[i+1]})
		}
	}
}

func template(labels map[string]tokensv1alpha1.LabelValue, annotations map[string]tokensv1alpha1.AnnotationValue) func(*spec) {
	return func(s *spec) {
		s.SecretTemplate = &tokensv1alpha1.SecretTemplate{Labels: labels, Annotations: annotations}
	}
}

func manyLabels(n int) map[string]tokensv1alpha1.LabelValue {
	labels := map[string]tokensv1alpha1.LabelValue{}
	for i := range n {
		labels[fmt.Sprintf("label-%d", i)] = "x"
	}
	return labels
}

func manyAnnotations(n, size int) map[string]tokensv1alpha1.AnnotationValue {
	annotations := map[string]tokensv1alpha1.AnnotationValue{}
	for i := range n {
		annotations[fmt.Sprintf("note-%d", i)] = tokensv1alpha1.AnnotationValue(strings.Repeat("x", size))
	}
	return annotations
}

func duration(s string) *metav1.Duration {
	d, err := time.ParseDuration(s)
	Expect(err).NotTo(HaveOccurred())
	return &metav1.Duration{Duration: d}
}

var _ = Describe("BankTokenRequest validation", func() {
	It("accepts a minimal valid request, with no defaults written into the spec", func() {
		btr := validPaymob("minimal")
		Expect(k8sClient.Create(ctx, btr)).To(Succeed())
		// Server-side defaults would make Argo CD report the resource OutOfSync.
		Expect(btr.Spec.GrantType).To(BeEmpty())
		Expect(btr.Spec.ClientAuthentication).To(BeEmpty())
		Expect(btr.Spec.SecretName).To(BeEmpty())
	})

	It("accepts an http endpoint, which the controller refuses unless started for tests", func() {
		btr := validPaymob("plain-http")
		btr.Spec.Endpoint = "http://127.0.0.1:8080/o/token/"
		Expect(k8sClient.Create(ctx, btr)).To(Succeed())
	})

	// Which provider accepts which grant, client authentication, scope, headers and metadata
	// is proven combination by combination in bankmatrix_contract_test.go; the entries here
	// check the messages a user reads.
	DescribeTable("refuses an invalid request with the message a user needs",
		func(mutate func(*tokensv1alpha1.BankTokenRequestSpec), wantMessage string) {
			btr := validPaymob("invalid")
			mutate(&btr.Spec)
			err := k8sClient.Create(ctx, btr)
			Expect(err).To(HaveOccurred(), "the apiserver accepted an invalid request")
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("unknown provider", func(s *spec) { s.Provider = "Acme" }, `spec.provider: Unsupported value: "Acme"`),
		Entry("relative endpoint", endpoint("/o/token/"), "endpoint must be an absolute https URL"),
		Entry("endpoint with another scheme", endpoint("ftp://bank.example/token"), "endpoint must be an absolute https URL"),
		Entry("endpoint that is not a URL", endpoint("bank token endpoint"), "endpoint must be an absolute https URL"),
		Entry("endpoint with a query string", endpoint("https://bank.example/o/token/?client_secret=x"), "endpoint must not carry a query string"),
		Entry("a grant the provider does not serve",
			func(s *spec) {
				s.Provider, s.GrantType = tokensv1alpha1.ProviderBanfico, tokensv1alpha1.GrantTypePassword
			},
			"provider Banfico supports only grantType client_credentials"),
		Entry("refresh_token as the primary grant", func(s *spec) { s.GrantType = "refresh_token" }, `spec.grantType: Unsupported value: "refresh_token"`),
		Entry("a scope over the provider's limit",
			func(s *spec) { s.Provider, s.Scope = tokensv1alpha1.ProviderRAKBankPartner, strings.Repeat("s", 501) },
			"provider RAKBankPartner needs a scope of 1 to 500 characters"),
		Entry("a query parameter MBANQ does not take", func(s *spec) {
			s.Provider, s.Endpoint = tokensv1alpha1.ProviderMbanq, "https://mbanq.example/oauth/token?tenantIdentifier=t&client_secret=x"
		}, "provider Mbanq's endpoint may carry only the query parameter tenantIdentifier"),
		Entry("a header the provider requires, missing", func(s *spec) { s.Provider = tokensv1alpha1.ProviderMbanq }, "provider Mbanq needs a tenantId header"),
		Entry("renewBefore and renewBeforePercentage together",
			func(s *spec) { s.RenewBefore, s.RenewBeforePercentage = duration("5m"), ptr.To[int32](30) },
			"set at most one of renewBefore and renewBeforePercentage"),
		Entry("renewBeforePercentage of 100", func(s *spec) { s.RenewBeforePercentage = ptr.To[int32](100) }, "spec.renewBeforePercentage: Invalid value: 100"),
		Entry("renewBefore under a second", func(s *spec) { s.RenewBefore = duration("500ms") }, "renewBefore must be at least 1s"),
		Entry("maxRefreshInterval under a minute", func(s *spec) { s.MaxRefreshInterval = duration("30s") }, "maxRefreshInterval must be at least 1m"),
		Entry("header name that is not an HTTP token", headers("tenant id", "x"), "spec.headers[0].name: Invalid value"),
		Entry("header value with a line break", headers("X-Device-Id", "a\r\nX-Evil: 1"), "spec.headers[0].value: Invalid value"),
		Entry("header the operator sets itself", headers("Authorization", "Bearer x"), "this header is set by the operator and cannot be overridden"),
		Entry("the same header twice", headers("X-A", "1", "X-A", "2"), "spec.headers[1]: Duplicate value"),
		Entry("secretName that is not a valid Secret name", func(s *spec) { s.SecretName = "Paymob_Token" }, "spec.secretName: Invalid value"),
		Entry("output Secret that is the credentials Secret", func(s *spec) { s.SecretName = "paymob-credentials" }, "must not be the credentials Secret"),
		Entry("missing credentials Secret, without a connection", func(s *spec) { s.CredentialsSecretRef.Name = "" },
			"provider, endpoint (or issuer) and credentialsSecretRef are required unless connectionRef names a BankConnection or ClusterBankConnection"),
		Entry("a connection and a provider of its own", func(s *spec) {
			s.ConnectionRef = &tokensv1alpha1.ConnectionReference{Kind: tokensv1alpha1.KindClusterBankConnection, Name: "bank"}
		}, "with connectionRef, the connection's fields (provider, endpoint"),
		Entry("a connection and TLS of its own", func(s *spec) {
			s.BankClient = tokensv1alpha1.BankClient{TLS: &tokensv1alpha1.TLSConfig{}}
			s.ConnectionRef = &tokensv1alpha1.ConnectionReference{Name: "bank"}
		}, "belong to the connection: set them there, not on the request"),
		Entry("a connection of an unknown kind", func(s *spec) {
			s.BankClient = tokensv1alpha1.BankClient{}
			s.ConnectionRef = &tokensv1alpha1.ConnectionReference{Kind: "Issuer", Name: "bank"}
		}, `spec.connectionRef.kind: Unsupported value: "Issuer"`),
		Entry("CA bundle in an unsupported kind of object",
			func(s *spec) {
				s.TLS = &tokensv1alpha1.TLSConfig{CABundleRef: &tokensv1alpha1.CABundleReference{Kind: "Pod", Name: "ca"}}
			},
			`spec.tls.caBundleRef.kind: Unsupported value: "Pod"`),
		Entry("PrivateKeyJWT without a key", func(s *spec) {
			s.Provider, s.GrantType, s.ClientAuthentication = tokensv1alpha1.ProviderOAuth2, "", tokensv1alpha1.ClientAuthenticationPrivateKeyJWT
		}, "clientAuthentication PrivateKeyJWT needs clientAssertion.privateKeySecretRef"),
		Entry("a signing key with another client authentication", func(s *spec) {
			s.ClientAssertion = &tokensv1alpha1.ClientAssertion{PrivateKeySecretRef: tokensv1alpha1.PrivateKeySecretReference{Name: "key"}}
		}, "clientAssertion is used only with clientAuthentication PrivateKeyJWT"),
		Entry("an assertion signing algorithm FAPI does not allow", func(s *spec) {
			s.Provider, s.GrantType, s.ClientAuthentication = tokensv1alpha1.ProviderOAuth2, "", tokensv1alpha1.ClientAuthenticationPrivateKeyJWT
			s.ClientAssertion = &tokensv1alpha1.ClientAssertion{PrivateKeySecretRef: tokensv1alpha1.PrivateKeySecretReference{Name: "key"}, SigningAlgorithm: "HS256"}
		}, `spec.clientAssertion.signingAlgorithm: Unsupported value: "HS256"`),
		Entry("TLSClientAuth without a client certificate", func(s *spec) {
			s.Provider, s.GrantType, s.ClientAuthentication = tokensv1alpha1.ProviderOAuth2, "", tokensv1alpha1.ClientAuthenticationTLSClientAuth
		}, "clientAuthentication TLSClientAuth and SelfSignedTLSClientAuth need tls.clientCertificateSecretRef"),
		Entry("a revocation endpoint on another host", func(s *spec) {
			s.RevocationEndpoint = "https://collector.example/o/revoke_token/"
		}, "revocationEndpoint must be on the token endpoint's scheme and host"),
		Entry("a revocation endpoint over another scheme", func(s *spec) {
			s.RevocationEndpoint = "http://payouts.example/api/secure/o/revoke_token/"
		}, "revocationEndpoint must be on the token endpoint's scheme and host"),
		Entry("a revocation endpoint that is not a URL", func(s *spec) { s.RevocationEndpoint = "revoke" }, "revocationEndpoint must be an absolute https URL"),
		Entry("a revocation endpoint for a provider without refresh tokens", func(s *spec) {
			s.Provider, s.Scope = tokensv1alpha1.ProviderRAKBankPartner, "accounts"
			s.RevocationEndpoint = "https://payouts.example/revoke"
		}, "revocationEndpoint is used only by provider"),
		Entry("refreshRevokesAccessToken for a provider whose behaviour is known", func(s *spec) {
			s.RefreshRevokesAccessToken = ptr.To(false)
		}, "refreshRevokesAccessToken is set only for provider OAuth2"),
		Entry("a template label value the apiserver refuses on a Secret", template(map[string]tokensv1alpha1.LabelValue{"team": "payments team!"}, nil),
			"spec.secretTemplate.labels.team: Invalid value"),
		Entry("a template label key with two slashes", template(map[string]tokensv1alpha1.LabelValue{"a/b/c": "x"}, nil), "a label key must be a qualified name"),
		Entry("a template label under the operator's prefix", template(map[string]tokensv1alpha1.LabelValue{"tokens.banktoken.io/credentials": "true"}, nil),
			"labels under tokens.banktoken.io/ are set by the operator only"),
		Entry("a template annotation under the operator's prefix", template(nil, map[string]tokensv1alpha1.AnnotationValue{"tokens.banktoken.io/input-hash": "x"}),
			"annotations under tokens.banktoken.io/ are set by the operator only"),
		Entry("a template annotation key that is no qualified name", template(nil, map[string]tokensv1alpha1.AnnotationValue{"not a key": "x"}),
			"an annotation key must be a qualified name"),
		Entry("a template annotation value over 4096 characters", template(nil, map[string]tokensv1alpha1.AnnotationValue{"note": tokensv1alpha1.AnnotationValue(strings.Repeat("x", 4097))}),
			"spec.secretTemplate.annotations.note: Too long"),
		Entry("template annotations over 16384 characters together", template(nil, manyAnnotations(5, 4000)),
			"the annotations together are at most 16384 characters"),
		Entry("more than 32 template labels", template(manyLabels(33), nil), "spec.secretTemplate.labels: Too many"),
		Entry("a credentials Secret name with a slash", func(s *spec) { s.CredentialsSecretRef.Name = "other/creds" }, "spec.credentialsSecretRef.name: Invalid value"),
		Entry("a client certificate Secret name with '..'", func(s *spec) {
			s.TLS = &tokensv1alpha1.TLSConfig{ClientCertificateSecretRef: &tokensv1alpha1.LocalSecretReference{Name: ".."}}
		}, "spec.tls.clientCertificateSecretRef.name: Invalid value"),
		Entry("a credentials key that no Secret key can be", func(s *spec) { s.CredentialsSecretRef.ClientIDKey = "../token" },
			"spec.credentialsSecretRef.clientIDKey: Invalid value"),
		Entry("the certificate's key delivered without the certificate", func(s *spec) {
			s.TLS = &tokensv1alpha1.TLSConfig{ClientCertificateSecretRef: &tokensv1alpha1.LocalSecretReference{Name: "client-tls"}}
			s.CertificateDelivery = &tokensv1alpha1.CertificateDelivery{PrivateKey: true}
		}, "certificateDelivery.privateKey needs certificateDelivery.certificate"),
		Entry("the certificate delivered by an inline request that has none", func(s *spec) {
			s.CertificateDelivery = &tokensv1alpha1.CertificateDelivery{Certificate: true}
		}, "certificateDelivery needs tls.clientCertificateSecretRef"),
		Entry("SelfSignedTLSClientAuth with only a CA bundle", func(s *spec) {
			s.Provider, s.GrantType, s.ClientAuthentication = tokensv1alpha1.ProviderOAuth2, "", tokensv1alpha1.ClientAuthenticationSelfSignedTLSClientAuth
			s.TLS = &tokensv1alpha1.TLSConfig{CABundleRef: &tokensv1alpha1.CABundleReference{Name: "ca"}}
		}, "clientAuthentication TLSClientAuth and SelfSignedTLSClientAuth need tls.clientCertificateSecretRef"),
	)

	It("accepts MBANQ's tenant in the query string instead of the tenantId header", func() {
		btr := validPaymob("mbanq-tenant-query")
		btr.Spec.Provider, btr.Spec.Scope = tokensv1alpha1.ProviderMbanq, ""
		btr.Spec.Endpoint = "https://mbanq.example/oauth/token?tenantIdentifier=default"
		Expect(k8sClient.Create(ctx, btr)).To(Succeed())
	})

	It("accepts a revocation endpoint on the token endpoint's host, and refreshRevokesAccessToken for OAuth2", func() {
		btr := validPaymob("revocation")
		btr.Spec.RevocationEndpoint = "https://payouts.example/api/secure/o/revoke_token/"
		Expect(k8sClient.Create(ctx, btr)).To(Succeed())
		oauth2 := validPaymob("revokes-on-refresh")
		oauth2.Spec.Provider, oauth2.Spec.RefreshRevokesAccessToken = tokensv1alpha1.ProviderOAuth2, ptr.To(true)
		Expect(k8sClient.Create(ctx, oauth2)).To(Succeed())
	})

	It("refuses an output Secret named where the refresh token is kept", func() {
		btr := validPaymob("payouts")
		btr.Spec.SecretName = "payouts-refresh-token"
		Expect(k8sClient.Create(ctx, btr)).To(MatchError(ContainSubstring("where the operator keeps the refresh token")))
	})

	It("accepts a secretTemplate the apiserver takes on a Secret", func() {
		btr := validPaymob("templated")
		template(map[string]tokensv1alpha1.LabelValue{"app.kubernetes.io/part-of": "payouts", "team": "payments"},
			map[string]tokensv1alpha1.AnnotationValue{"reloader.stakater.com/match": "true", "note": tokensv1alpha1.AnnotationValue(strings.Repeat("x", 4096))})(&btr.Spec)
		Expect(k8sClient.Create(ctx, btr)).To(Succeed())
	})

	It("refuses an output Secret that defaults to the credentials Secret", func() {
		btr := validPaymob("paymob-credentials")
		Expect(k8sClient.Create(ctx, btr)).To(MatchError(ContainSubstring("must not be the credentials Secret")))
	})

	It("accepts every sample in config/samples (one per bank, one per open-banking client authentication, and an Open Finance one naming its issuer)", func() {
		files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "tokens_v1alpha1_*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(8))
		issuers := 0
		methods := map[tokensv1alpha1.ClientAuthentication]bool{}
		providers := map[tokensv1alpha1.Provider]bool{}
		for _, file := range files {
			raw, err := os.ReadFile(file)
			Expect(err).NotTo(HaveOccurred())
			btr := &tokensv1alpha1.BankTokenRequest{}
			Expect(yaml.UnmarshalStrict(raw, btr)).To(Succeed(), file)
			btr.Namespace = namespace
			Expect(k8sClient.Create(ctx, btr)).To(Succeed(), file)
			providers[btr.Spec.Provider] = true
			methods[btr.Spec.ClientAuthentication] = true
			if btr.Spec.Issuer != "" {
				issuers++
			}
		}
		Expect(issuers).To(Equal(1), "the Open Finance sample names its issuer")
		Expect(providers).To(HaveKey(tokensv1alpha1.ProviderRAKBank))
		Expect(providers).To(HaveKey(tokensv1alpha1.ProviderRAKBankPartner))
		Expect(providers).To(HaveKey(tokensv1alpha1.ProviderBanfico))
		Expect(providers).To(HaveKey(tokensv1alpha1.ProviderMbanq))
		Expect(providers).To(HaveKey(tokensv1alpha1.ProviderPaymob))
		Expect(methods).To(HaveKey(tokensv1alpha1.ClientAuthenticationPrivateKeyJWT))
		Expect(methods).To(HaveKey(tokensv1alpha1.ClientAuthenticationTLSClientAuth))
	})
})
