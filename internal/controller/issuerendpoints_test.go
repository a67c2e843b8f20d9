package controller

import (
	"testing"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/issuermetadata"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

func TestRequestHashCoversTheIssuerAndKeepsHashesWithoutIt(t *testing.T) {
	spec := &tokensv1alpha1.BankTokenRequestSpec{BankClient: tokensv1alpha1.BankClient{
		Provider: tokensv1alpha1.ProviderBanfico, Endpoint: "https://bank.example/token"}}
	// As TestRequestHashCoversTheAssertionKeyAndKeepsOlderHashes pins it.
	const before = "328940da3bf7444b9fc69c7cd3360d14"
	if got := requestHash(spec, []string{"Secret/c/uid/1"}); got != before {
		t.Fatalf("hash without issuer changed: %s", got)
	}
	spec.Issuer = "https://bank.example"
	if requestHash(spec, []string{"Secret/c/uid/1"}) == before {
		t.Error("the issuer is not in the hash")
	}
}

func TestExplicitFieldsWinOverTheIssuersMetadata(t *testing.T) {
	endpoints := issuermetadata.Endpoints{Token: "https://mtls.bank.example/token", TokenAlias: true,
		Revocation: "https://mtls.bank.example/revoke", RevocationAlias: true}
	spec := &tokensv1alpha1.BankTokenRequestSpec{BankClient: tokensv1alpha1.BankClient{
		Provider: tokensv1alpha1.ProviderOAuth2, Issuer: "https://bank.example/of",
		Endpoint: "https://bank.example/token", RevocationEndpoint: "https://bank.example/revoke",
		ClientAssertion: &tokensv1alpha1.ClientAssertion{Audience: "https://bank.example/token"},
	}}
	g := &gathered{}
	var status tokensv1alpha1.EndpointsStatus
	applyIssuerEndpoints(spec, g, endpoints, spec.Issuer, &status)
	if spec.Endpoint != "https://bank.example/token" || spec.RevocationEndpoint != "https://bank.example/revoke" ||
		spec.ClientAssertion.Audience != "https://bank.example/token" {
		t.Fatalf("explicit fields were replaced: %+v", spec.BankClient)
	}
	if status.TokenEndpointSource != tokensv1alpha1.EndpointFromSpec || status.RevocationEndpointSource != tokensv1alpha1.EndpointFromSpec ||
		status.AssertionAudienceSource != tokensv1alpha1.EndpointFromSpec {
		t.Errorf("sources %+v", status)
	}
}

func TestTheIssuersMetadataFillsWhatTheSpecLeavesOut(t *testing.T) {
	spec := &tokensv1alpha1.BankTokenRequestSpec{BankClient: tokensv1alpha1.BankClient{
		Provider: tokensv1alpha1.ProviderOAuth2, Issuer: "https://bank.example/of",
		ClientAssertion: &tokensv1alpha1.ClientAssertion{},
	}}
	shared := spec.ClientAssertion
	g := &gathered{}
	var status tokensv1alpha1.EndpointsStatus
	applyIssuerEndpoints(spec, g, issuermetadata.Endpoints{Token: "https://mtls.bank.example/token", TokenAlias: true,
		Revocation: "https://mtls.bank.example/revoke", RevocationAlias: true}, spec.Issuer, &status)
	if spec.Endpoint != "https://mtls.bank.example/token" || status.TokenEndpointSource != tokensv1alpha1.EndpointFromMTLSAlias {
		t.Errorf("token endpoint %s from %s", spec.Endpoint, status.TokenEndpointSource)
	}
	if spec.RevocationEndpoint != "https://mtls.bank.example/revoke" || status.RevocationEndpointSource != tokensv1alpha1.EndpointFromMTLSAlias {
		t.Errorf("revocation endpoint %s from %s", spec.RevocationEndpoint, status.RevocationEndpointSource)
	}
	if spec.ClientAssertion.Audience != spec.Issuer || g.Credentials.AssertionKey.Audience != spec.Issuer || shared.Audience != "" {
		t.Errorf("audience %q (key %q); the object read must stay untouched: %q", spec.ClientAssertion.Audience, g.Credentials.AssertionKey.Audience, shared.Audience)
	}
}

func TestARevocationEndpointOnAnotherHostIsNotTaken(t *testing.T) {
	spec := &tokensv1alpha1.BankTokenRequestSpec{BankClient: tokensv1alpha1.BankClient{
		Provider: tokensv1alpha1.ProviderOAuth2, Issuer: "https://bank.example/of"}}
	var status tokensv1alpha1.EndpointsStatus
	applyIssuerEndpoints(spec, &gathered{}, issuermetadata.Endpoints{Token: "https://bank.example/token",
		Revocation: "https://revoke.elsewhere.example/revoke"}, spec.Issuer, &status)
	if spec.RevocationEndpoint != "" || status.RevocationEndpoint != "" {
		t.Errorf("a refresh token would be sent to another host: %q", spec.RevocationEndpoint)
	}
}

func TestFailuresThatSuggestAMovedEndpoint(t *testing.T) {
	for _, tc := range []struct {
		failure providers.Error
		moved   bool
	}{
		{providers.Error{StatusCode: 404, Reason: providers.ReasonInvalidEndpoint}, true},
		{providers.Error{StatusCode: 405}, true},
		{providers.Error{Reason: providers.ReasonEndpointUnreachable, NotSent: true}, true},
		{providers.Error{Reason: providers.ReasonTLSError, NotSent: true}, true},
		{providers.Error{StatusCode: 401, Reason: providers.ReasonInvalidCredentials}, false},
		{providers.Error{StatusCode: 503, Reason: providers.ReasonServerError}, false},
		{providers.Error{Reason: providers.ReasonTimeout}, false},
	} {
		if got := suggestsMovedEndpoint(&tc.failure); got != tc.moved {
			t.Errorf("%+v: %v", tc.failure, got)
		}
	}
}
