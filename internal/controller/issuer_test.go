package controller

import (
	"net/url"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// openFinanceRequest is a request that names only the sandbox OpenFinance server's issuer,
// with its client's id, the CA bundle and the client certificate; mutate picks the client
// authentication.
func openFinanceRequest(ns, name string, mutate ...func(*harness.SandboxRequest)) harness.SandboxRequest {
	request := harness.NewSandboxRequest(bank, sandbox.MTLSServer, ns, name)
	spec := &request.Request.Spec
	spec.Endpoint, spec.Issuer, spec.Scope = "", bank.OpenFinanceIssuer(), "accounts"
	request.Credentials.Data = map[string][]byte{tokensv1alpha1.DefaultClientIDKey: []byte(bank.Credentials(sandbox.OpenFinance).ClientID)}
	for _, m := range mutate {
		m(&request)
	}
	return request
}

// withPrivateKeyJWT makes the client sign PS256 assertions with the key OpenFinance holds.
func withPrivateKeyJWT(algorithm string) func(*harness.SandboxRequest) {
	return func(r *harness.SandboxRequest) {
		keyPEM, keyID := bank.OpenFinanceAssertionKey()
		seenSecrets.add(string(keyPEM))
		keySecret := r.Credentials.DeepCopy()
		keySecret.Name = r.Request.Name + "-signing-key"
		keySecret.Data = map[string][]byte{tokensv1alpha1.DefaultPrivateKeyKey: keyPEM, tokensv1alpha1.DefaultKeyIDKey: []byte(keyID)}
		r.AssertionKey = keySecret
		r.Request.Spec.ClientAuthentication = tokensv1alpha1.ClientAuthentication(providers.ClientAuthPrivateKeyJWT)
		r.Request.Spec.ClientAssertion = &tokensv1alpha1.ClientAssertion{SigningAlgorithm: algorithm,
			PrivateKeySecretRef: tokensv1alpha1.PrivateKeySecretReference{Name: keySecret.Name}}
	}
}

func openFinanceCallsSince(n int) []sandbox.Call { return bank.Calls(sandbox.OpenFinance)[n:] }

func hostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	Expect(err).NotTo(HaveOccurred())
	return u.Host
}

var _ = Describe("Issuer metadata (Open Finance)", Label(openFinanceLabel), func() {
	It("a request that names only the issuer gets a certificate-bound token from the mTLS alias, and status says where each endpoint came from", func() {
		ns := newNamespace()
		before := len(bank.Calls(sandbox.OpenFinance))
		request := openFinanceRequest(ns, "issuer-only")
		Expect(request.Apply(suiteCtx, k8sClient)).To(Succeed())
		secret := eventuallyReady(request.Request, tokensv1alpha1.ReasonTokenIssued)

		certPEM, _ := bank.ClientCertificate()
		Expect(secret.Data).To(HaveKeyWithValue(tokensv1alpha1.SecretKeyCertificateThumbprint, []byte(sandbox.CertificateThumbprint(certPEM))))
		Expect(openFinanceCallsSince(before)).To(ConsistOf(And(
			HaveField("Listener", sandbox.ListenerMTLS), HaveField("Status", 200),
			HaveField("ClientAuthentication", providers.ClientAuthTLS))))
		Eventually(func() *tokensv1alpha1.EndpointsStatus { return getBTR(request.Request).Status.Endpoints }).Should(And(
			HaveField("Issuer", bank.OpenFinanceIssuer()),
			HaveField("TokenEndpoint", bank.OpenFinanceTokenURL(true)),
			HaveField("TokenEndpointSource", tokensv1alpha1.EndpointFromMTLSAlias),
			HaveField("RevocationEndpointSource", tokensv1alpha1.EndpointFromMTLSAlias),
			HaveField("MetadataURL", ContainSubstring("/.well-known/oauth-authorization-server/open-finance")),
			HaveField("MetadataReadAt", Not(BeNil())),
			HaveField("MetadataError", "")))
	})

	It("PrivateKeyJWT PS256: the assertion's aud is the issuer, and the token is bound to the certificate presented at the alias", func() {
		ns := newNamespace()
		before := len(bank.Calls(sandbox.OpenFinance))
		request := openFinanceRequest(ns, "private-key-jwt", withPrivateKeyJWT("PS256"), func(r *harness.SandboxRequest) {
			r.Request.Spec.FAPIInteractionID = tokensv1alpha1.FAPIInteractionIDEnabled
		})
		Expect(request.Apply(suiteCtx, k8sClient)).To(Succeed())
		eventuallyReady(request.Request, tokensv1alpha1.ReasonTokenIssued)
		calls := openFinanceCallsSince(before)
		Expect(calls).To(ConsistOf(And(
			HaveField("AssertionAudience", bank.OpenFinanceIssuer()), HaveField("Listener", sandbox.ListenerMTLS),
			HaveField("ClientAuthentication", providers.ClientAuthPrivateKeyJWT), HaveField("Status", 200),
			HaveField("InteractionID", MatchRegexp(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)))))
		Eventually(func() string {
			if attempt := getBTR(request.Request).Status.LastAttempt; attempt != nil {
				return attempt.InteractionID
			}
			return ""
		}).Should(Equal(calls[0].InteractionID), "status.lastAttempt names the call the FAPI server saw")
		Eventually(func() *tokensv1alpha1.EndpointsStatus { return getBTR(request.Request).Status.Endpoints }).Should(And(
			HaveField("AssertionAudience", bank.OpenFinanceIssuer()),
			HaveField("AssertionAudienceSource", tokensv1alpha1.EndpointFromIssuerMetadata)))
	})

	It("a client authentication method or signing algorithm the metadata does not list is Stalled, naming both, with no token call", func() {
		ns := newNamespace()
		before := bank.Requests(sandbox.OpenFinance)
		basic := openFinanceRequest(ns, "basic", func(r *harness.SandboxRequest) {
			r.Request.Spec.ClientAuthentication = tokensv1alpha1.ClientAuthentication(providers.ClientAuthBasic)
			r.Request.Spec.TLS.ClientCertificateSecretRef = nil
			r.ClientCertificate = nil
			r.Credentials.Data[tokensv1alpha1.DefaultClientSecretKey] = []byte("demo-not-registered")
		})
		Expect(basic.Apply(suiteCtx, k8sClient)).To(Succeed())
		rs256 := openFinanceRequest(ns, "rs256", withPrivateKeyJWT("RS256"))
		Expect(rs256.Apply(suiteCtx, k8sClient)).To(Succeed())

		Eventually(func() string { return stalledReason(basic.Request) }).Should(Equal(tokensv1alpha1.ReasonClientAuthenticationNotSupported))
		Expect(readyCondition(basic.Request).Message).To(And(ContainSubstring("client_secret_basic"), ContainSubstring("private_key_jwt, tls_client_auth")))
		Eventually(func() string { return stalledReason(rs256.Request) }).Should(Equal(tokensv1alpha1.ReasonSigningAlgorithmNotSupported))
		Expect(readyCondition(rs256.Request).Message).To(And(ContainSubstring("RS256"), ContainSubstring("PS256, ES256")))
		Consistently(func() int { return bank.Requests(sandbox.OpenFinance) }, time.Second).Should(Equal(before))
	})

	It("an issuer whose metadata cannot be read is retried, not Stalled, and nothing is sent", func() {
		ns := newNamespace()
		before := bank.Requests(sandbox.OpenFinance)
		request := openFinanceRequest(ns, "no-metadata", func(r *harness.SandboxRequest) { r.Request.Spec.Issuer = bank.URL() + "/nowhere" })
		Expect(request.Apply(suiteCtx, k8sClient)).To(Succeed())
		Eventually(func() *metav1.Condition {
			return meta.FindStatusCondition(getBTR(request.Request).Status.Conditions, tokensv1alpha1.ConditionReconciling)
		}).Should(And(HaveField("Reason", tokensv1alpha1.ReasonIssuerMetadataUnavailable), HaveField("Message", ContainSubstring("404"))))
		Expect(stalledReason(request.Request)).To(BeEmpty())
		Expect(getBTR(request.Request).Status.Endpoints).To(HaveField("MetadataError", ContainSubstring(tokensv1alpha1.ReasonIssuerMetadataUnavailable)))
		Expect(bank.Requests(sandbox.OpenFinance)).To(Equal(before))
	})

	It("follows the metadata when the token endpoint moves to another host, and sends no refresh token there", func() {
		ns := newNamespace()
		request := openFinanceRequest(ns, "moving", func(r *harness.SandboxRequest) { r.Request.Spec.Scope = "accounts offline_access" })
		Expect(request.Apply(suiteCtx, k8sClient)).To(Succeed())
		first := accessTokenIn(eventuallyReady(request.Request, tokensv1alpha1.ReasonTokenIssued))
		Eventually(func() string { return refreshTokenIn(request.Request) }).ShouldNot(BeEmpty())
		oldURL := bank.OpenFinanceTokenURL(true)

		bank.MoveOpenFinanceTokenEndpoint()
		DeferCleanup(bank.MoveOpenFinanceTokenEndpoint) // back to 127.0.0.1 for the specs after
		newURL := bank.OpenFinanceTokenURL(true)
		Expect(hostOf(newURL)).NotTo(Equal(hostOf(oldURL)))
		before := len(bank.Calls(sandbox.OpenFinance))
		btr := getBTR(request.Request)
		btr.Annotations = map[string]string{tokensv1alpha1.RefreshRequestedAtAnnotation: time.Now().Format(time.RFC3339Nano)}
		Expect(k8sClient.Update(suiteCtx, btr)).To(Succeed())

		Eventually(func() string { return accessTokenIn(outputSecret(request.Request)) }, 30*time.Second).ShouldNot(Equal(first))
		eventuallyReady(request.Request, tokensv1alpha1.ReasonTokenIssued)
		Expect(getBTR(request.Request).Status.Endpoints.TokenEndpoint).To(Equal(newURL))
		calls := openFinanceCallsSince(before)
		Expect(calls).To(ContainElement(And(HaveField("Host", hostOf(oldURL)), HaveField("Status", 404))),
			"the forced refresh went to the old endpoint, which has moved")
		Expect(calls).To(ContainElement(And(HaveField("Host", hostOf(newURL)), HaveField("Grant", providers.GrantClientCredentials), HaveField("Status", 200))))
		Expect(calls).NotTo(ContainElement(And(HaveField("Host", hostOf(newURL)), HaveField("Grant", providers.GrantRefreshToken))),
			"a refresh token issued under the old endpoint is never sent to the new host")
		Expect(readyCondition(request.Request).Status).To(Equal(metav1.ConditionTrue))
	})
})

var _ = Describe("Issuer metadata on a connection (Open Finance)", Label(openFinanceLabel, connectionsLabel), func() {
	It("a BankConnection that names only the issuer serves its requests from the mTLS alias, and its status shows the endpoints", func() {
		ns := newNamespace()
		before := len(bank.Calls(sandbox.OpenFinance))
		sandboxed := openFinanceRequest(ns, "open-finance")
		Expect(sandboxed.Apply(suiteCtx, k8sClient)).To(Succeed()) // the request of its own, and the Secrets a connection shares
		conn := &tokensv1alpha1.BankConnection{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "open-finance"},
			Spec: tokensv1alpha1.BankConnectionSpec{BankClient: sandboxed.Request.Spec.BankClient}}
		Expect(k8sClient.Create(suiteCtx, conn)).To(Succeed())
		btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "through-connection"},
			Spec: tokensv1alpha1.BankTokenRequestSpec{Scope: "accounts", ConnectionRef: &tokensv1alpha1.ConnectionReference{Name: conn.Name}}}
		Expect(k8sClient.Create(suiteCtx, btr)).To(Succeed())
		eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)

		Expect(openFinanceCallsSince(before)).To(HaveEach(HaveField("Listener", sandbox.ListenerMTLS)))
		Eventually(func() *tokensv1alpha1.EndpointsStatus { return getBTR(btr).Status.Endpoints }).Should(
			HaveField("TokenEndpointSource", tokensv1alpha1.EndpointFromMTLSAlias))
		Eventually(func() *tokensv1alpha1.EndpointsStatus {
			got := &tokensv1alpha1.BankConnection{}
			Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(conn), got)).To(Succeed())
			return got.Status.Endpoints
		}).Should(And(HaveField("TokenEndpoint", bank.OpenFinanceTokenURL(true)), HaveField("TokenEndpointSource", tokensv1alpha1.EndpointFromMTLSAlias)))
	})
})
