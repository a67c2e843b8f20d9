package controller

import (
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// A namespace editor chooses where the operator connects and which Secrets it reads: these
// specs show what the operator refuses, against the real apiserver.
var _ = Describe("Safe in a shared cluster", func() {
	It("refuses an endpoint on a cloud metadata address: Stalled, EndpointRefused, a Warning event, no call", func() {
		ns := newNamespace()
		btr := applyBank(ns, providers.Banfico, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.Endpoint = "https://169.254.169.254/latest/meta-data/iam/security-credentials"
		})
		stalled := eventuallyStalled(btr, tokensv1alpha1.ReasonEndpointRefused)
		Expect(stalled.Message).To(ContainSubstring("169.254.169.254 is a cloud metadata address"))
		Expect(stalled.Message).NotTo(ContainSubstring("dial"), "the rule, not a connect error")
		Expect(readyCondition(btr).Reason).To(Equal(tokensv1alpha1.ReasonEndpointRefused))
		Eventually(func() []string { return warningNotes(btr) }).Should(ContainElement(
			ContainSubstring("EndpointRefused: Banfico token endpoint https://169.254.169.254/latest/meta-data/iam/security-credentials is refused")))
	})

	It("refuses the cluster's own apiserver, even trusted through the namespace's kube-root-ca.crt", func() {
		ns := newNamespace()
		apiServer := apiServerHostPort()
		// kube-controller-manager publishes this ConfigMap in every namespace; envtest runs
		// none, so the test publishes it as it would.
		Expect(k8sClient.Create(suiteCtx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kube-root-ca.crt"},
			Data:       map[string]string{"ca.crt": string(cfg.CAData)},
		})).To(Succeed())
		btr := applyBank(ns, providers.Banfico, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.Endpoint = "https://" + apiServer + "/api/v1/namespaces/" + ns + "/secrets"
			b.Spec.TLS.CABundleRef = &tokensv1alpha1.CABundleReference{Kind: "ConfigMap", Name: "kube-root-ca.crt"}
		})
		stalled := eventuallyStalled(btr, tokensv1alpha1.ReasonEndpointRefused)
		host, _, _ := strings.Cut(apiServer, ":")
		Expect(stalled.Message).To(ContainSubstring(host + " is the cluster's apiserver"))
		Expect(getBTR(btr).Status.FailedAttempts).To(BeNumerically("==", 1), "a refusal is permanent: not retried")
	})

	It("never touches an existing Secret it does not own, and says why", func() {
		ns := newNamespace()
		Expect(k8sClient.Create(suiteCtx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "builder"}})).To(Succeed())
		theirs := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "banfico",
				Annotations: map[string]string{corev1.ServiceAccountNameKey: "builder"}},
			Type: corev1.SecretTypeServiceAccountToken,
			Data: map[string][]byte{"token": []byte("fixture-not-a-service-account-token")},
		}
		Expect(k8sClient.Create(suiteCtx, theirs)).To(Succeed())
		before := bank.Requests(providers.Banfico)
		btr := applyBank(ns, providers.Banfico) // spec.secretName defaults to "banfico"
		stalled := eventuallyStalled(btr, tokensv1alpha1.ReasonSecretConflict)
		Expect(stalled.Message).To(ContainSubstring("Secret " + ns + "/banfico exists and is not owned by this BankTokenRequest"))
		Consistently(func() *corev1.Secret {
			now := &corev1.Secret{}
			Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(theirs), now)).To(Succeed())
			return now
		}).WithTimeout(2*time.Second).Should(SatisfyAll(
			WithTransform(func(s *corev1.Secret) string { return s.ResourceVersion }, Equal(theirs.ResourceVersion)),
			WithTransform(func(s *corev1.Secret) map[string][]byte { return s.Data }, Equal(theirs.Data)),
		), "the Secret someone else owns was changed")
		Expect(bank.Requests(providers.Banfico)).To(Equal(before), "a bank was called for a Secret that cannot be written")
		Expect(k8sClient.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: refreshSecretName(btr)}, &corev1.Secret{})).
			NotTo(Succeed(), "no refresh-token Secret either")
	})

	Context("with --credentials-label-required", func() {
		BeforeEach(func() {
			credentialsLabelRequired = true
			restartManager()
			DeferCleanup(func() {
				credentialsLabelRequired = false
				restartManager()
			})
		})

		It("reads no unlabelled Secret, calls no bank, and acts on the label once it is added", func() {
			ns := newNamespace()
			before := bank.Requests(providers.RAKBankPartner)
			request := harness.NewSandboxRequest(bank, providers.RAKBankPartner, ns, "partner")
			// The harness opts its Secrets in, as a user following the README would: not here.
			request.Credentials.Labels, request.ClientCertificate.Labels = nil, nil
			Expect(request.Apply(suiteCtx, k8sClient)).To(Succeed())
			btr := request.Request

			stalled := eventuallyStalled(btr, tokensv1alpha1.ReasonCredentialsNotOptedIn)
			Expect(stalled.Message).To(ContainSubstring("credentials Secret " + ns + "/partner-credentials does not carry the label tokens.banktoken.io/credentials=true"))
			optIn(request.Credentials)
			stalled = eventuallyStalled(btr, tokensv1alpha1.ReasonCredentialsNotOptedIn, "client certificate Secret "+ns+"/"+harness.ClientCertificateSecretName)
			Expect(bank.Requests(providers.RAKBankPartner)).To(Equal(before), "a bank was called with a Secret not opted in")

			optIn(request.ClientCertificate)
			secret := eventuallyReady(btr, tokensv1alpha1.ReasonTokenIssued)
			Expect(bank.AccessTokenValid(providers.RAKBankPartner, accessTokenIn(secret))).To(BeTrue())
			Expect(meta.FindStatusCondition(getBTR(btr).Status.Conditions, tokensv1alpha1.ConditionStalled)).To(BeNil())
		})
	})
})

// eventuallyStalled waits for Stalled with reason (and each of want in its message).
func eventuallyStalled(btr *tokensv1alpha1.BankTokenRequest, reason string, want ...string) *metav1.Condition {
	GinkgoHelper()
	var stalled *metav1.Condition
	Eventually(func(g Gomega) {
		stalled = meta.FindStatusCondition(getBTR(btr).Status.Conditions, tokensv1alpha1.ConditionStalled)
		g.Expect(stalled).NotTo(BeNil())
		g.Expect(stalled.Reason).To(Equal(reason), stalled.Message)
		for _, w := range want {
			g.Expect(stalled.Message).To(ContainSubstring(w))
		}
	}).Should(Succeed())
	return stalled
}

// optIn labels a Secret as one the operator may read.
func optIn(secret *corev1.Secret) {
	GinkgoHelper()
	patch := client.MergeFrom(secret.DeepCopy())
	secret.Labels = map[string]string{tokensv1alpha1.CredentialsLabel: tokensv1alpha1.CredentialsLabelValue}
	Expect(k8sClient.Patch(suiteCtx, secret, patch)).To(Succeed())
}

// warningNotes are the "reason: note" of the Warning events about a resource.
func warningNotes(btr *tokensv1alpha1.BankTokenRequest) []string {
	list := &eventsv1.EventList{}
	Expect(k8sClient.List(suiteCtx, list, client.InNamespace(btr.Namespace))).To(Succeed())
	var notes []string
	for _, e := range list.Items {
		if e.Regarding.Name == btr.Name && e.Type == corev1.EventTypeWarning {
			notes = append(notes, e.Note)
		}
	}
	return notes
}

// apiServerHostPort is where the suite's kube-apiserver listens.
func apiServerHostPort() string {
	host := cfg.Host
	if !strings.Contains(host, "://") {
		host = "https://" + host
	}
	u, err := url.Parse(host)
	Expect(err).NotTo(HaveOccurred())
	return u.Host
}

var _ = Describe("The apiserver's addresses", func() {
	It("are read from the kubernetes Service and its EndpointSlice", func() {
		a := &apiServerAddresses{reader: k8sClient}
		var got []string
		Eventually(func(g Gomega) {
			addrs, err := a.serviceAddresses(suiteCtx)
			g.Expect(err).NotTo(HaveOccurred())
			got = nil
			for _, addr := range addrs {
				got = append(got, addr.String())
			}
			svc := &corev1.Service{}
			g.Expect(k8sClient.Get(suiteCtx, apiServerService, svc)).To(Succeed())
			g.Expect(got).To(ContainElement(svc.Spec.ClusterIP + ":443"))
			_, port, _ := strings.Cut(apiServerHostPort(), ":")
			// envtest's apiserver advertises an address of its own choosing on its real port.
			g.Expect(got).To(ContainElement(HaveSuffix(":"+port)), "the EndpointSlice's address: the apiserver itself")
			g.Expect(got).To(HaveLen(2))
		}).Should(Succeed())
		GinkgoWriter.Printf("apiserver addresses: %v\n", got)
	})
})
