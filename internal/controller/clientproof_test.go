package controller

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

func TestCredentialsSecretKeysFollowTheClientAuthentication(t *testing.T) {
	cases := []struct {
		provider tokensv1alpha1.Provider
		method   tokensv1alpha1.ClientAuthentication
		want     []string
	}{
		{tokensv1alpha1.ProviderBanfico, "", []string{"client_id", "client_secret"}},
		{tokensv1alpha1.ProviderBanfico, tokensv1alpha1.ClientAuthenticationPrivateKeyJWT, []string{"client_id"}},
		{tokensv1alpha1.ProviderOAuth2, tokensv1alpha1.ClientAuthenticationTLSClientAuth, []string{"client_id"}},
		{tokensv1alpha1.ProviderOAuth2, tokensv1alpha1.ClientAuthenticationSelfSignedTLSClientAuth, []string{"client_id"}},
		{tokensv1alpha1.ProviderMbanq, "", []string{"client_id", "client_secret", "username", "password"}},
	}
	for _, tc := range cases {
		btr := &tokensv1alpha1.BankTokenRequest{Spec: tokensv1alpha1.BankTokenRequestSpec{BankClient: tokensv1alpha1.BankClient{
			Provider:             tc.provider,
			ClientAuthentication: tc.method,
		}}}
		if got := credentialKeys(btr).required(); !slices.Equal(got, tc.want) {
			t.Errorf("%s/%q: required keys %v, want %v", tc.provider, tc.method, got, tc.want)
		}
	}
}

func TestRequestHashCoversTheAssertionKeyAndKeepsOlderHashes(t *testing.T) {
	spec := &tokensv1alpha1.BankTokenRequestSpec{BankClient: tokensv1alpha1.BankClient{
		Provider: tokensv1alpha1.ProviderBanfico,
		Endpoint: "https://bank.example/token",
	}}
	// The hash of a spec without clientAssertion, as every release before it computed it.
	const before = "328940da3bf7444b9fc69c7cd3360d14"
	if got := requestHash(spec, []string{"Secret/c/uid/1"}); got != before {
		t.Errorf("hash without clientAssertion changed: %s, want %s", got, before)
	}
	spec.ClientAuthentication = tokensv1alpha1.ClientAuthenticationPrivateKeyJWT
	spec.ClientAssertion = &tokensv1alpha1.ClientAssertion{PrivateKeySecretRef: tokensv1alpha1.PrivateKeySecretReference{Name: "key"}}
	withKey := requestHash(spec, []string{"Secret/c/uid/1", "Secret/key/uid/1"})
	spec.ClientAssertion.Audience = "https://bank.example/realms/x"
	if requestHash(spec, []string{"Secret/c/uid/1", "Secret/key/uid/1"}) == withKey {
		t.Error("the assertion's audience is not in the hash")
	}
	if requestHash(spec, []string{"Secret/c/uid/1", "Secret/key/uid/2"}) == requestHash(spec, []string{"Secret/c/uid/1", "Secret/key/uid/1"}) {
		t.Error("the key Secret's version is not in the hash")
	}
}

func TestClientCertificateStatus(t *testing.T) {
	ca, err := sandbox.NewCertificateAuthority("test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	notAfter := time.Now().Add(time.Hour).Truncate(time.Second).UTC()
	certPEM, _, err := ca.Issue(sandbox.Leaf{CommonName: "c", Client: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	if clientCertificateStatus(firstCertificate([]byte("not PEM")), nil) != nil {
		t.Error("a status for no certificate")
	}
	long := &heldToken{ExpiresAt: time.Now().Add(2 * time.Hour)}
	short := &heldToken{ExpiresAt: time.Now().Add(30 * time.Minute)}
	for _, tc := range []struct {
		held *heldToken
		want bool
	}{{nil, false}, {short, false}, {long, true}} {
		status := clientCertificateStatus(firstCertificate(certPEM), tc.held)
		if status.ExpiresBeforeToken != tc.want || (status.Message != "") != tc.want || len(status.SHA256Fingerprint) != 95 {
			t.Errorf("held %v: status %+v, want expiresBeforeToken %v", tc.held, status, tc.want)
		}
		if status.NotAfter == nil || !status.NotAfter.Equal(&metav1.Time{Time: notAfter}) {
			t.Errorf("notAfter %v, want %v", status.NotAfter, notAfter)
		}
	}
}
