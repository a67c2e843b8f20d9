package controller

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// The two open-banking client authentications, end to end through the real manager: the
// signed-JWT Keycloak realm checks each assertion's signature, audience, expiry and jti; the
// mTLS server takes the client certificate from the TLS handshake (verified against its CA)
// and refuses a call without one or with another subject.
var _ = Describe("Open-banking client authentication", func() {
	It("PrivateKeyJWT: obtains a token with a signed assertion and no client secret, and acts at once on a rotated key", func() {
		ns := newNamespace()
		keyPEM, _ := bank.ClientAssertionKey()
		seenSecrets.add(string(keyPEM))
		DeferCleanup(func() { bank.SetAssertionPublicKey(publicKeyOf(keyPEM)) })

		btr := applyBank(ns, sandbox.SignedJWTRealm)
		token := accessTokenIn(eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued))
		Expect(bank.AccessTokenValid(sandbox.SignedJWTRealm, token)).To(BeTrue())
		credentials := &corev1.Secret{}
		Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: ns, Name: btr.Spec.CredentialsSecretRef.Name}, credentials)).To(Succeed())
		Expect(credentials.Data).To(HaveLen(1), "the credentials Secret holds only client_id")
		Expect(bank.Calls(sandbox.SignedJWTRealm)).To(ContainElement(HaveField("ClientAuthentication", providers.ClientAuthPrivateKeyJWT)))

		By("the client rotates its key and the bank registers the new one: a new token at once, not at renewal")
		rotatedPEM, rotatedPublic := newSigningKey()
		bank.SetAssertionPublicKey(rotatedPublic)
		updateAssertionKey(btr, rotatedPEM)
		Eventually(func() string { return accessTokenIn(outputSecret(btr)) }).ShouldNot(Equal(token))
		rotatedToken := accessTokenIn(eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued))
		Expect(bank.AccessTokenValid(sandbox.SignedJWTRealm, rotatedToken)).To(BeTrue())

		By("a key the bank does not hold: a permanent failure that names the assertion; the token held stays")
		unknownPEM, _ := newSigningKey()
		updateAssertionKey(btr, unknownPEM)
		Eventually(func() string { return stalledReason(btr) }).Should(Equal(providers.ReasonInvalidClientAssertion))
		Expect(readyCondition(btr).Reason).To(Equal(tokensv1alpha1.ReasonRefreshFailing))
		Expect(accessTokenIn(outputSecret(btr))).To(Equal(rotatedToken))
	})

	It("PrivateKeyJWT: a missing key Secret is reported, and creating it is acted on at once", func() {
		ns := newNamespace()
		request := harness.NewSandboxRequest(bank, sandbox.SignedJWTRealm, ns, "no-key-yet")
		key := request.AssertionKey
		request.AssertionKey = nil
		Expect(request.Apply(suiteCtx, k8sClient)).To(Succeed())
		Eventually(func() *metav1.Condition { return readyCondition(request.Request) }).
			Should(HaveField("Reason", tokensv1alpha1.ReasonKeySecretNotFound))
		Expect(readyCondition(request.Request).Message).To(ContainSubstring("client assertion key Secret " + ns + "/" + key.Name))

		Expect(k8sClient.Create(suiteCtx, key)).To(Succeed())
		eventuallyReady(request.Request, tokensv1alpha1.ReasonTokenIssued)
	})

	It("TLSClientAuth: obtains a certificate-bound token, says so in the Secret and status, and flags a certificate that expires first", func() {
		ns := newNamespace()
		btr := applyBank(ns, sandbox.MTLSServer)
		secret := eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
		certPEM, _ := bank.ClientCertificate()
		Expect(secret.Data).To(HaveKeyWithValue(tokensv1alpha1.SecretKeyCertificateBound, []byte("true")))
		Expect(secret.Data).To(HaveKeyWithValue(tokensv1alpha1.SecretKeyCertificateThumbprint, []byte(sandbox.CertificateThumbprint(certPEM))))
		Expect(bank.AccessTokenValid(sandbox.MTLSServer, accessTokenIn(secret))).To(BeTrue())
		status := getBTR(btr).Status.ClientCertificate
		Expect(status).NotTo(BeNil())
		Expect(status.SHA256Fingerprint).To(Equal(opensslFingerprint(certPEM)))
		Expect(status.ExpiresBeforeToken).To(BeFalse())

		By("a renewed certificate that expires before the token: a new token bound to it at once, and a warning")
		shortPEM, shortKey, err := bank.CertificateAuthority().Issue(sandbox.Leaf{CommonName: "sandbox-bank-client", Client: true,
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(30 * time.Minute)})
		Expect(err).NotTo(HaveOccurred())
		seenSecrets.add(string(shortKey))
		renewed := harness.ClientCertificateSecret(bank, ns, harness.ClientCertificateSecretName)
		renewed.Data = map[string][]byte{corev1.TLSCertKey: shortPEM, corev1.TLSPrivateKeyKey: shortKey}
		Expect(harness.CreateOrUpdate(suiteCtx, k8sClient, renewed)).To(Succeed())
		Eventually(func() []byte { return outputSecret(btr).Data[tokensv1alpha1.SecretKeyCertificateThumbprint] }).
			Should(Equal([]byte(sandbox.CertificateThumbprint(shortPEM))))
		// Status is written after the Secret.
		Eventually(func() *tokensv1alpha1.ClientCertificateStatus { return getBTR(btr).Status.ClientCertificate }).Should(And(
			HaveField("SHA256Fingerprint", opensslFingerprint(shortPEM)),
			HaveField("ExpiresBeforeToken", true),
			HaveField("Message", ContainSubstring("before the token"))))
		Eventually(func() []string { return eventReasons(btr) }).Should(ContainElement(reasonClientCertificateExpiresBeforeToken))
	})

	It("TLSClientAuth: a certificate the bank has not registered is a permanent failure naming the certificate", func() {
		ns := newNamespace()
		otherPEM, otherKey, err := bank.CertificateAuthority().Issue(sandbox.Leaf{CommonName: "not-the-registered-client", Client: true,
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)})
		Expect(err).NotTo(HaveOccurred())
		seenSecrets.add(string(otherKey))
		request := harness.NewSandboxRequest(bank, sandbox.MTLSServer, ns, "unregistered")
		request.ClientCertificate.Data = map[string][]byte{corev1.TLSCertKey: otherPEM, corev1.TLSPrivateKeyKey: otherKey}
		Expect(request.Apply(suiteCtx, k8sClient)).To(Succeed())
		Eventually(func() string { return stalledReason(request.Request) }).Should(Equal(providers.ReasonClientCertificateRejected))
		Expect(readyCondition(request.Request).Status).To(BeEquivalentTo("False"))
	})
})

func stalledReason(btr *tokensv1alpha1.BankTokenRequest) string {
	if c := meta.FindStatusCondition(getBTR(btr).Status.Conditions, tokensv1alpha1.ConditionStalled); c != nil {
		return c.Reason
	}
	return ""
}

// updateAssertionKey replaces the PEM key in btr's key Secret, keeping its kid.
func updateAssertionKey(btr *tokensv1alpha1.BankTokenRequest, keyPEM []byte) {
	seenSecrets.add(string(keyPEM))
	secret := harness.AssertionKeySecret(bank, btr)
	secret.Data[tokensv1alpha1.DefaultPrivateKeyKey] = keyPEM
	createOrUpdateSecret(btr.Namespace, secret.Name, secret.Data)
}

func newSigningKey() ([]byte, any) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	der, err := x509.MarshalPKCS8PrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), &key.PublicKey
}

func publicKeyOf(keyPEM []byte) any {
	block, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	Expect(err).NotTo(HaveOccurred())
	return key.(*ecdsa.PrivateKey).Public()
}

// opensslFingerprint is what openssl x509 -noout -fingerprint -sha256 prints after the "=".
func opensslFingerprint(certPEM []byte) string {
	block, _ := pem.Decode(certPEM)
	sum := sha256.Sum256(block.Bytes)
	pairs := make([]string, len(sum))
	for i, b := range sum {
		pairs[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(pairs, ":")
}
