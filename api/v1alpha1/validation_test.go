package v1alpha1_test

import (
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
			Provider:             tokensv1alpha1.ProviderPaymob,
			Endpoint:             "https://payouts.example/api/secure/o/token/",
			Scope:                "read write",
			CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: "paymob-credentials"},
		},
	}
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

	DescribeTable("refuses an invalid request with the message a user needs",
		func(mutate func(*tokensv1alpha1.BankTokenRequest), wantMessage string) {
			btr := validPaymob("invalid")
			mutate(btr)
			err := k8sClient.Create(ctx, btr)
			Expect(err).To(HaveOccurred(), "the apiserver accepted an invalid request")
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("unknown provider",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Provider = "Acme" },
			`spec.provider: Unsupported value: "Acme"`),
		Entry("relative endpoint",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Endpoint = "/o/token/" },
			"endpoint must be an absolute https URL"),
		Entry("endpoint with another scheme",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Endpoint = "ftp://bank.example/token" },
			"endpoint must be an absolute https URL"),
		Entry("endpoint that is not a URL",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Endpoint = "bank token endpoint" },
			"endpoint must be an absolute https URL"),
		Entry("endpoint with a query string",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.Endpoint = "https://bank.example/o/token/?client_secret=x"
			},
			"endpoint must not carry a query string"),
		Entry("password grant with a client_credentials-only provider",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.Provider = tokensv1alpha1.ProviderBanfico
				b.Spec.GrantType = tokensv1alpha1.GrantTypePassword
			},
			"grantType password is supported only by the RAKBank, Mbanq, Paymob and OAuth2 providers"),
		Entry("client_credentials grant with Paymob",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.GrantType = tokensv1alpha1.GrantTypeClientCredentials },
			"Mbanq and Paymob need password"),
		Entry("refresh_token as the primary grant",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.GrantType = "refresh_token" },
			`spec.grantType: Unsupported value: "refresh_token"`),
		Entry("RAKBankPartner without a scope",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.Provider = tokensv1alpha1.ProviderRAKBankPartner
				b.Spec.Scope = ""
			},
			"provider RAKBankPartner needs a scope of 1 to 500 characters"),
		Entry("RAKBankPartner with a scope over 500 characters",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.Provider = tokensv1alpha1.ProviderRAKBankPartner
				b.Spec.Scope = strings.Repeat("s", 501)
			},
			"provider RAKBankPartner needs a scope of 1 to 500 characters"),
		Entry("RAKBank without a scope",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.Provider = tokensv1alpha1.ProviderRAKBank
				b.Spec.Scope = ""
			},
			"provider RAKBank needs a scope"),
		Entry("renewBefore and renewBeforePercentage together",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.RenewBefore = duration("5m")
				b.Spec.RenewBeforePercentage = ptr.To[int32](30)
			},
			"set at most one of renewBefore and renewBeforePercentage"),
		Entry("renewBeforePercentage of 100",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.RenewBeforePercentage = ptr.To[int32](100) },
			"spec.renewBeforePercentage: Invalid value: 100"),
		Entry("renewBefore under a second",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.RenewBefore = duration("500ms") },
			"renewBefore must be at least 1s"),
		Entry("maxRefreshInterval under a minute",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.MaxRefreshInterval = duration("30s") },
			"maxRefreshInterval must be at least 1m"),
		Entry("header name that is not an HTTP token",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.Headers = []tokensv1alpha1.HTTPHeader{{Name: "tenant id", Value: "x"}}
			},
			"spec.headers[0].name: Invalid value"),
		Entry("header value with a line break",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.Headers = []tokensv1alpha1.HTTPHeader{{Name: "X-Device-Id", Value: "a\r\nX-Evil: 1"}}
			},
			"spec.headers[0].value: Invalid value"),
		Entry("header the operator sets itself",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.Headers = []tokensv1alpha1.HTTPHeader{{Name: "Authorization", Value: "Bearer x"}}
			},
			"this header is set by the operator and cannot be overridden"),
		Entry("the same header twice",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.Headers = []tokensv1alpha1.HTTPHeader{{Name: "X-A", Value: "1"}, {Name: "X-A", Value: "2"}}
			},
			"spec.headers[1]: Duplicate value"),
		Entry("secretName that is not a valid Secret name",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.SecretName = "Paymob_Token" },
			"spec.secretName: Invalid value"),
		Entry("output Secret that is the credentials Secret",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.SecretName = "paymob-credentials" },
			"must not be the credentials Secret"),
		Entry("output Secret defaulting to the credentials Secret",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Name = "paymob-credentials" },
			"must not be the credentials Secret"),
		Entry("Headers client authentication for a provider other than RAKBankPartner",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.ClientAuthentication = tokensv1alpha1.ClientAuthenticationHeaders
			},
			"clientAuthentication Headers is used by, and only by, the RAKBankPartner provider"),
		Entry("RAKBankPartner with Basic client authentication",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.Provider = tokensv1alpha1.ProviderRAKBankPartner
				b.Spec.ClientAuthentication = tokensv1alpha1.ClientAuthenticationBasic
			},
			"clientAuthentication Headers is used by, and only by, the RAKBankPartner provider"),
		Entry("Banfico with Body client authentication",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.Provider = tokensv1alpha1.ProviderBanfico
				b.Spec.ClientAuthentication = tokensv1alpha1.ClientAuthenticationBody
			},
			"provider Banfico needs clientAuthentication Basic"),
		Entry("metadata for a provider other than RAKBankPartner",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Metadata = map[string]string{"account_id": "1"} },
			"metadata (oauth_metadata) is sent only by the RAKBankPartner provider"),
		Entry("Mbanq without a tenantId header",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Provider = tokensv1alpha1.ProviderMbanq },
			"provider Mbanq needs a tenantId header"),
		Entry("missing credentials Secret name",
			func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.CredentialsSecretRef.Name = "" },
			"spec.credentialsSecretRef.name"),
		Entry("CA bundle in an unsupported kind of object",
			func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.TLS = &tokensv1alpha1.TLSConfig{CABundleRef: &tokensv1alpha1.CABundleReference{Kind: "Pod", Name: "ca"}}
			},
			`spec.tls.caBundleRef.kind: Unsupported value: "Pod"`),
	)

	It("accepts every sample in config/samples (one per bank)", func() {
		files, err := filepath.Glob(filepath.Join("..", "..", "config", "samples", "tokens_v1alpha1_*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(5))
		providers := map[tokensv1alpha1.Provider]bool{}
		for _, file := range files {
			raw, err := os.ReadFile(file)
			Expect(err).NotTo(HaveOccurred())
			btr := &tokensv1alpha1.BankTokenRequest{}
			Expect(yaml.UnmarshalStrict(raw, btr)).To(Succeed(), file)
			btr.Namespace = namespace
			Expect(k8sClient.Create(ctx, btr)).To(Succeed(), file)
			providers[btr.Spec.Provider] = true
		}
		Expect(providers).To(HaveLen(5), "one sample per bank")
	})
})
