package controller

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

func TestTokenRequestParametersBindTheRefreshTokenAndKeepOlderHashes(t *testing.T) {
	spec := &tokensv1alpha1.BankTokenRequestSpec{BankClient: tokensv1alpha1.BankClient{
		Provider: tokensv1alpha1.ProviderBanfico,
		Endpoint: "https://bank.example/token",
	}}
	versions := []string{"Secret/c/uid/1"}
	// The same spec and value as TestRequestHashCoversTheAssertionKeyAndKeepsOlderHashes:
	// the hash every release before tokenRequestParameters computed.
	const before = "328940da3bf7444b9fc69c7cd3360d14"
	spec.TokenRequestParameters = []tokensv1alpha1.TokenRequestParameter{}
	if got := requestHash(spec, versions); got != before {
		t.Errorf("hash without parameters changed: %s, want %s", got, before)
	}
	// The interaction id is a header per call, not something a grant is issued under.
	spec.FAPIInteractionID = tokensv1alpha1.FAPIInteractionIDEnabled
	if got := requestHash(spec, versions); got != before {
		t.Errorf("fapiInteractionID changed the hash: %s", got)
	}
	spec.TokenRequestParameters = []tokensv1alpha1.TokenRequestParameter{{Name: "resource", Value: "https://a.example"}}
	one := requestHash(spec, versions)
	spec.TokenRequestParameters = append(spec.TokenRequestParameters, tokensv1alpha1.TokenRequestParameter{Name: "resource", Value: "https://b.example"})
	two := requestHash(spec, versions)
	if one == before || two == one {
		t.Errorf("parameters are not in the hash: %s, %s, %s", before, one, two)
	}
}

func TestInteractionIDsAreSentWhereTheSpecOrThePresetSays(t *testing.T) {
	cases := []struct {
		provider tokensv1alpha1.Provider
		mode     tokensv1alpha1.FAPIInteractionIDMode
		want     bool
	}{
		// No preset is a FAPI server today: unset means none.
		{tokensv1alpha1.ProviderOAuth2, "", false},
		{tokensv1alpha1.ProviderPaymob, "", false},
		{tokensv1alpha1.ProviderOAuth2, tokensv1alpha1.FAPIInteractionIDEnabled, true},
		{tokensv1alpha1.ProviderRAKBankPartner, tokensv1alpha1.FAPIInteractionIDEnabled, true},
		{tokensv1alpha1.ProviderOAuth2, tokensv1alpha1.FAPIInteractionIDDisabled, false},
	}
	for _, tc := range cases {
		spec := &tokensv1alpha1.BankTokenRequestSpec{BankClient: tokensv1alpha1.BankClient{Provider: tc.provider, FAPIInteractionID: tc.mode}}
		id := interactionIDFor(spec)
		if (id != "") != tc.want {
			t.Errorf("%s/%q: id %q, want one: %v", tc.provider, tc.mode, id, tc.want)
		}
		if id != "" {
			if _, err := uuid.Parse(id); err != nil || id == interactionIDFor(spec) {
				t.Errorf("%s/%q: %q is not a fresh UUID", tc.provider, tc.mode, id)
			}
		}
	}
	if got := withInteractionID("refused", "abc"); !strings.HasSuffix(got, "(x-fapi-interaction-id abc)") {
		t.Errorf("withInteractionID = %q", got)
	}
	if got := withInteractionID("refused", ""); got != "refused" {
		t.Errorf("withInteractionID without an id = %q", got)
	}
}
