package v1alpha1_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// The contract: a spec the apiserver admits is one its provider accepts, and the other way
// round. Every combination of provider, grant type, client authentication, scope, headers
// and metadata goes through server-side admission (a dry-run create) and through
// providers.Check, the check the request builder makes before any call. What the CRD cannot
// know (the credentials in a Secret) is filled in complete, as the controller would read it.

type matrixCase struct {
	provider             tokensv1alpha1.Provider
	grantType            tokensv1alpha1.GrantType
	clientAuthentication tokensv1alpha1.ClientAuthentication
	scope                namedValue[string]
	headers              namedValue[[]tokensv1alpha1.HTTPHeader]
	metadata             namedValue[map[string]string]
	proof                clientProof
}

// clientProof is what the spec names beside the credentials Secret for the client to prove
// itself with: a key that signs client assertions, a client certificate.
type clientProof struct{ key, certificate bool }

func (p clientProof) String() string {
	return fmt.Sprintf("key=%v certificate=%v", p.key, p.certificate)
}

var allProofs = []clientProof{{}, {key: true}, {certificate: true}, {key: true, certificate: true}}

// proofFor is the proof a client authentication needs.
func proofFor(a providers.ClientAuthentication) clientProof {
	return clientProof{key: a == providers.ClientAuthPrivateKeyJWT, certificate: a.IsCertificateBased()}
}

// contractKeyPEM is a real signing key: providers.Check parses the key it is given.
var contractKeyPEM = sync.OnceValue(func() providers.Secret {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	der, err := x509.MarshalPKCS8PrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	return providers.Secret(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
})

type namedValue[T any] struct {
	name  string
	value T
}

func (c matrixCase) String() string {
	return fmt.Sprintf("provider=%s grantType=%q clientAuthentication=%q scope=%s headers=%s metadata=%s %s",
		c.provider, c.grantType, c.clientAuthentication, c.scope.name, c.headers.name, c.metadata.name, c.proof)
}

func (c matrixCase) spec() tokensv1alpha1.BankTokenRequestSpec {
	spec := c.specWithoutProof()
	if c.proof.key {
		spec.ClientAssertion = &tokensv1alpha1.ClientAssertion{
			PrivateKeySecretRef: tokensv1alpha1.PrivateKeySecretReference{Name: "signing-key"}}
	}
	if c.proof.certificate {
		spec.TLS = &tokensv1alpha1.TLSConfig{
			ClientCertificateSecretRef: &tokensv1alpha1.LocalSecretReference{Name: "client-tls"}}
	}
	return spec
}

func (c matrixCase) specWithoutProof() tokensv1alpha1.BankTokenRequestSpec {
	return tokensv1alpha1.BankTokenRequestSpec{
		BankClient: tokensv1alpha1.BankClient{
			Provider:             c.provider,
			Endpoint:             "https://bank.example/oauth/token",
			GrantType:            c.grantType,
			CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: "bank-credentials"},
			ClientAuthentication: c.clientAuthentication,
			Headers:              c.headers.value,
			Metadata:             c.metadata.value,
		},
		Scope: c.scope.value,
	}
}

// request is the providers.Request the controller makes of the spec and a complete
// credentials Secret.
func (c matrixCase) request() providers.Request {
	spec := c.spec()
	req := providers.Request{
		Provider:             providers.Name(spec.Provider),
		TokenEndpoint:        spec.Endpoint,
		GrantType:            providers.GrantType(spec.GrantType),
		ClientAuthentication: providers.ClientAuthentication(spec.ClientAuthentication),
		Scope:                spec.Scope,
		Credentials: providers.Credentials{
			ClientID: "demo-client", ClientSecret: "demo-client-secret", Username: "demo-user", Password: "demo-password",
		},
		Metadata: spec.Metadata,
	}
	for _, h := range spec.Headers {
		req.Headers = append(req.Headers, providers.Header{Name: h.Name, Value: h.Value})
	}
	if c.proof.key {
		req.Credentials.AssertionKey.PrivateKey = contractKeyPEM()
	}
	if c.proof.certificate {
		// Check does not read TLS material; it only needs to know there is a certificate.
		req.TLS.ClientCertificate, req.TLS.ClientKey = []byte("tls.crt"), "tls.key"
	}
	return req
}

func allMatrixCases() []matrixCase {
	scopes := []namedValue[string]{
		{"empty", ""}, {"present", "read write"}, {"blank", "   "},
		// 500 characters but 501 bytes: a limit counted in bytes would refuse it.
		{"500-characters", strings.Repeat("s", 499) + "é"},
		{"501-characters", strings.Repeat("s", 501)},
	}
	headers := []namedValue[[]tokensv1alpha1.HTTPHeader]{
		{"none", nil},
		{"tenantId", []tokensv1alpha1.HTTPHeader{{Name: providers.HeaderMbanqTenant, Value: "tenant-1"}}},
		{"TENANTID", []tokensv1alpha1.HTTPHeader{{Name: strings.ToUpper(providers.HeaderMbanqTenant), Value: "tenant-1"}}},
		{"empty-tenantId", []tokensv1alpha1.HTTPHeader{{Name: providers.HeaderMbanqTenant, Value: ""}}},
		{"X-Device-Id", []tokensv1alpha1.HTTPHeader{{Name: "X-Device-Id", Value: "device-1"}}},
	}
	for _, name := range providers.ReservedHeaders() {
		headers = append(headers, namedValue[[]tokensv1alpha1.HTTPHeader]{
			"reserved-" + name, []tokensv1alpha1.HTTPHeader{{Name: name, Value: "x"}},
		})
	}
	metadata := []namedValue[map[string]string]{{"none", nil}, {"account_id", map[string]string{"account_id": "0188000049916"}}}

	var cases []matrixCase
	for _, p := range providers.Names() {
		for _, g := range append([]providers.GrantType{""}, providers.PrimaryGrants()...) {
			for _, a := range append([]providers.ClientAuthentication{""}, providers.ClientAuthentications()...) {
				for _, s := range scopes {
					for _, h := range headers {
						for _, m := range metadata {
							// Every proof against every client authentication, without the
							// header and metadata variations; those with the proof each needs.
							proofs := []clientProof{proofFor(a)}
							if h.value == nil && m.value == nil {
								proofs = allProofs
							}
							for _, proof := range proofs {
								cases = append(cases, matrixCase{tokensv1alpha1.Provider(p), tokensv1alpha1.GrantType(g), tokensv1alpha1.ClientAuthentication(a), s, h, m, proof})
							}
						}
					}
				}
			}
		}
	}
	return cases
}

// verdict is one side's answer to one case.
type verdict struct {
	accepted bool
	reason   string
}

func admission(c client.Client, mc matrixCase) (verdict, error) {
	btr := &tokensv1alpha1.BankTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "contract", Namespace: namespace},
		Spec:       mc.spec(),
	}
	err := c.Create(ctx, btr, client.DryRunAll)
	switch {
	case err == nil:
		return verdict{accepted: true}, nil
	case apierrors.IsInvalid(err):
		return verdict{reason: err.Error()}, nil
	}
	return verdict{}, err
}

func providerCheck(mc matrixCase) verdict {
	if err := providers.Check(mc.request()); err != nil {
		return verdict{reason: err.Error()}
	}
	return verdict{accepted: true}
}

func connectionAdmission(c client.Client, mc matrixCase) (verdict, error) {
	conn := &tokensv1alpha1.ClusterBankConnection{
		ObjectMeta: metav1.ObjectMeta{Name: "contract"},
		Spec:       tokensv1alpha1.BankConnectionSpec{BankClient: mc.spec().BankClient},
	}
	err := c.Create(ctx, conn, client.DryRunAll)
	switch {
	case err == nil:
		return verdict{accepted: true}, nil
	case apierrors.IsInvalid(err):
		return verdict{reason: err.Error()}, nil
	}
	return verdict{}, err
}

// connectionCases are the cases with a scope every provider takes: a connection has no scope
// (each request brings its own, checked by the controller against the connection's provider),
// so the provider's verdict on the rest of the case is the connection's.
func connectionCases() []matrixCase {
	var cases []matrixCase
	for _, mc := range allMatrixCases() {
		if mc.scope.name == "present" {
			cases = append(cases, mc)
		}
	}
	return cases
}

// admitAll runs every case through admit on a client that may make thousands of dry runs.
func admitAll(cases []matrixCase, admit func(client.Client, matrixCase) (verdict, error)) []verdict {
	cfg := rest.CopyConfig(controlPlane.Config)
	cfg.QPS, cfg.Burst = 10000, 10000 // thousands of dry runs; the default 5 per second would take an hour
	c, err := client.New(cfg, client.Options{Scheme: k8sClient.Scheme()})
	Expect(err).NotTo(HaveOccurred())

	admitted := make([]verdict, len(cases))
	failures := make([]error, len(cases))
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				admitted[i], failures[i] = admit(c, cases[i])
			}
		})
	}
	for i := range cases {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, mc := range cases {
		Expect(failures[i]).NotTo(HaveOccurred(), mc.String())
	}
	return admitted
}

// expectAgreement fails on any case where admission and the provider's check disagree, and
// when either side accepts all or nothing (the matrix would then test nothing).
func expectAgreement(cases []matrixCase, admitted []verdict) {
	var disagreements []string
	accepted := 0
	for i, mc := range cases {
		checked := providerCheck(mc)
		if checked.accepted {
			accepted++
		}
		if admitted[i].accepted != checked.accepted {
			disagreements = append(disagreements, fmt.Sprintf("%s: admitted=%v (%s), provider accepts=%v (%s)",
				mc, admitted[i].accepted, admitted[i].reason, checked.accepted, checked.reason))
		}
	}
	Expect(disagreements).To(BeEmpty(), "%d of %d combinations disagree:\n%s",
		len(disagreements), len(cases), strings.Join(disagreements[:min(len(disagreements), 30)], "\n"))
	Expect(accepted).To(BeNumerically(">", 0), "no combination is accepted: the matrix tests nothing")
	Expect(accepted).To(BeNumerically("<", len(cases)), "every combination is accepted: the matrix tests nothing")
}

var _ = Describe("the bank matrix contract", func() {
	It("admits exactly the specs whose provider accepts the request", func() {
		cases := allMatrixCases()
		expectAgreement(cases, admitAll(cases, admission))
	})

	It("admits exactly the connections whose provider accepts their client", func() {
		cases := connectionCases()
		expectAgreement(cases, admitAll(cases, connectionAdmission))
	})
})

// issuerCase is a case the provider accepts, with its issuer named in place of its endpoint.
func issuerCases() map[tokensv1alpha1.Provider]tokensv1alpha1.BankTokenRequestSpec {
	specs := map[tokensv1alpha1.Provider]tokensv1alpha1.BankTokenRequestSpec{}
	for _, mc := range allMatrixCases() {
		if _, done := specs[mc.provider]; done || !providerCheck(mc).accepted {
			continue
		}
		spec := mc.spec()
		spec.Endpoint, spec.Issuer = "", "https://bank.example/open-finance"
		specs[mc.provider] = spec
	}
	return specs
}

var _ = Describe("the bank matrix contract for issuer metadata", func() {
	It("admits an issuer in place of the endpoint exactly where the provider's servers publish metadata", func() {
		specs := issuerCases()
		Expect(specs).To(HaveLen(len(providers.Names())))
		for provider, spec := range specs {
			preset, _ := providers.PresetFor(providers.Name(provider))
			btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "contract-issuer", Namespace: namespace}, Spec: spec}
			err := k8sClient.Create(ctx, btr, client.DryRunAll)
			conn := &tokensv1alpha1.ClusterBankConnection{ObjectMeta: metav1.ObjectMeta{Name: "contract-issuer"},
				Spec: tokensv1alpha1.BankConnectionSpec{BankClient: spec.BankClient}}
			connErr := k8sClient.Create(ctx, conn, client.DryRunAll)
			if preset.PublishesMetadata {
				Expect(err).NotTo(HaveOccurred(), string(provider))
				Expect(connErr).NotTo(HaveOccurred(), string(provider))
			} else {
				Expect(err).To(MatchError(ContainSubstring("issuer (authorization server metadata) is used only by provider")), string(provider))
				Expect(connErr).To(MatchError(ContainSubstring("issuer (authorization server metadata) is used only by provider")), string(provider))
			}
		}
	})

	It("refuses a spec with neither endpoint nor issuer, and an issuer with a query or fragment", func() {
		spec := issuerCases()[tokensv1alpha1.ProviderOAuth2]
		for issuer, message := range map[string]string{
			"":                            "provider, endpoint (or issuer) and credentialsSecretRef are required",
			"https://bank.example/of?x=1": "issuer must carry no query string and no fragment",
			"https://bank.example/of#top": "issuer must carry no query string and no fragment",
			"bank.example/open-finance":   "issuer must be an absolute https URL",
		} {
			spec.Issuer = issuer
			btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Name: "contract-issuer", Namespace: namespace}, Spec: spec}
			Expect(k8sClient.Create(ctx, btr, client.DryRunAll)).To(MatchError(ContainSubstring(message)), issuer)
		}
	})
})
