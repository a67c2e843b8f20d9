package v1alpha1_test

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// oauth2WithParameters is a valid OAuth2 request sending the given parameters.
func oauth2WithParameters(name string, nameValues ...string) *tokensv1alpha1.BankTokenRequest {
	btr := validPaymob(name)
	btr.Spec.Provider, btr.Spec.GrantType = tokensv1alpha1.ProviderOAuth2, tokensv1alpha1.GrantTypeClientCredentials
	for i := 0; i+1 < len(nameValues); i += 2 {
		btr.Spec.TokenRequestParameters = append(btr.Spec.TokenRequestParameters,
			tokensv1alpha1.TokenRequestParameter{Name: nameValues[i], Value: nameValues[i+1]})
	}
	return btr
}

var _ = Describe("tokenRequestParameters and fapiInteractionID validation", func() {
	It("accepts audience and a repeated RFC 8707 resource on an OAuth2 request, and fapiInteractionID, with no default written", func() {
		btr := oauth2WithParameters("oauth2-parameters",
			"resource", "https://api.bank.example/accounts", "resource", "https://api.bank.example/payments", "audience", "https://bank.example")
		btr.Spec.FAPIInteractionID = tokensv1alpha1.FAPIInteractionIDEnabled
		Expect(k8sClient.Create(ctx, btr)).To(Succeed())

		plain := validPaymob("no-interaction-id-default")
		Expect(k8sClient.Create(ctx, plain)).To(Succeed())
		Expect(plain.Spec.FAPIInteractionID).To(BeEmpty())
		Expect(plain.Spec.TokenRequestParameters).To(BeNil())
	})

	// Every reserved name, from the one list the request builder keeps, in another case too.
	It("refuses every name the operator sets itself, in any case", func() {
		for i, name := range providers.ReservedTokenRequestParameters() {
			for j, spelling := range []string{name, strings.ToUpper(name)} {
				err := k8sClient.Create(ctx, oauth2WithParameters(fmt.Sprintf("reserved-%d-%d", i, j), spelling, "x"))
				Expect(err).To(HaveOccurred(), "the apiserver accepted parameter %q", spelling)
				Expect(err.Error()).To(ContainSubstring("this parameter is set by the operator and cannot be overridden"))
			}
		}
	})

	DescribeTable("refuses parameters it cannot send",
		func(btr *tokensv1alpha1.BankTokenRequest, wantMessage string) {
			err := k8sClient.Create(ctx, btr)
			Expect(err).To(HaveOccurred(), "the apiserver accepted an invalid request")
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("a provider whose document lists every field", func() *tokensv1alpha1.BankTokenRequest {
			btr := validPaymob("paymob-parameters")
			btr.Spec.TokenRequestParameters = []tokensv1alpha1.TokenRequestParameter{{Name: "audience", Value: "x"}}
			return btr
		}(), "tokenRequestParameters are sent only by provider OAuth2"),
		Entry("a name outside RFC 6749 §8.2", oauth2WithParameters("bad-name", "a b", "x"), "spec.tokenRequestParameters[0].name: Invalid value"),
		Entry("an empty value", oauth2WithParameters("empty-value", "audience", ""), "spec.tokenRequestParameters[0].value"),
		Entry("a value over 2048 characters", oauth2WithParameters("long-value", "resource", strings.Repeat("r", 2049)), "Too long"),
		Entry("more than 16 parameters", oauth2WithParameters("many", strings.Split(strings.Repeat("resource,r,", 17), ",")[:34]...),
			"spec.tokenRequestParameters: Too many"),
		Entry("an unknown fapiInteractionID mode", func() *tokensv1alpha1.BankTokenRequest {
			btr := validPaymob("bad-mode")
			btr.Spec.FAPIInteractionID = "Always"
			return btr
		}(), `spec.fapiInteractionID: Unsupported value: "Always"`),
		Entry("parameters beside a connectionRef", func() *tokensv1alpha1.BankTokenRequest {
			btr := oauth2WithParameters("beside-connection", "audience", "x")
			btr.Spec.BankClient = tokensv1alpha1.BankClient{TokenRequestParameters: btr.Spec.TokenRequestParameters}
			btr.Spec.ConnectionRef = &tokensv1alpha1.ConnectionReference{Name: "bank"}
			return btr
		}(), "belong to the connection"),
	)
})
