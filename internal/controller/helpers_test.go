package controller

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

var bankProviders = map[providers.Name]tokensv1alpha1.Provider{
	providers.RAKBank:        tokensv1alpha1.ProviderRAKBank,
	providers.RAKBankPartner: tokensv1alpha1.ProviderRAKBankPartner,
	providers.Banfico:        tokensv1alpha1.ProviderBanfico,
	providers.Mbanq:          tokensv1alpha1.ProviderMbanq,
	providers.Paymob:         tokensv1alpha1.ProviderPaymob,
}

var namespaceCounter int

// newNamespace gives each test its own namespace, so writes can be counted per test.
func newNamespace() string {
	namespaceCounter++
	name := fmt.Sprintf("t%d-%d", namespaceCounter, time.Now().UnixNano()%100000)
	Expect(k8sClient.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	// envtest runs no namespace controller: delete the test's resources so that none keeps
	// calling the shared fake banks during later tests.
	DeferCleanup(func() {
		Expect(k8sClient.DeleteAllOf(suiteCtx, &tokensv1alpha1.BankTokenRequest{}, client.InNamespace(name))).To(Succeed())
		Eventually(func() ([]tokensv1alpha1.BankTokenRequest, error) {
			list := &tokensv1alpha1.BankTokenRequestList{}
			err := k8sClient.List(suiteCtx, list, client.InNamespace(name))
			return list.Items, err
		}).Should(BeEmpty())
	})
	return name
}

// applyBank creates the credentials Secret, the CA bundle ConfigMap, the client certificate
// Secret and a BankTokenRequest for one fake bank, and returns the request.
func applyBank(namespace string, name providers.Name, mutate ...func(*tokensv1alpha1.BankTokenRequest)) *tokensv1alpha1.BankTokenRequest {
	lower := strings.ToLower(string(name))
	creds := bank.Credentials(name)
	data := map[string][]byte{"client_id": []byte(creds.ClientID), "client_secret": []byte(creds.ClientSecret)}
	if creds.Username != "" {
		data["username"] = []byte(creds.Username)
		data["password"] = []byte(creds.Password)
	}
	createOrUpdateSecret(namespace, lower+"-credentials", data)
	ensureCA(namespace)

	btr := &tokensv1alpha1.BankTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: lower, Namespace: namespace},
		Spec: tokensv1alpha1.BankTokenRequestSpec{
			Provider:             bankProviders[name],
			Endpoint:             bank.TokenURL(name),
			Scope:                creds.Scope,
			CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: lower + "-credentials"},
			Metadata:             creds.Metadata,
			TLS: &tokensv1alpha1.TLSConfig{
				CABundleRef: &tokensv1alpha1.CABundleReference{Name: "bank-ca"},
			},
		},
	}
	for _, h := range creds.Headers {
		btr.Spec.Headers = append(btr.Spec.Headers, tokensv1alpha1.HTTPHeader{Name: h.Name, Value: h.Value})
	}
	if name == providers.RAKBankPartner {
		cert, key := bank.ClientCertificate()
		createOrUpdateSecret(namespace, "partner-client-tls", map[string][]byte{"tls.crt": cert, "tls.key": key})
		btr.Spec.TLS.ClientCertificateSecretRef = &tokensv1alpha1.LocalSecretReference{Name: "partner-client-tls"}
	}
	for _, m := range mutate {
		m(btr)
	}
	Expect(k8sClient.Create(suiteCtx, btr)).To(Succeed())
	return btr
}

func ensureCA(namespace string) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "bank-ca", Namespace: namespace},
		Data: map[string]string{"ca.crt": string(bank.CABundle())}}
	err := k8sClient.Create(suiteCtx, cm)
	if err != nil {
		Expect(client.IgnoreAlreadyExists(err)).To(Succeed())
	}
}

func createOrUpdateSecret(namespace, name string, data map[string][]byte) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	err := k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(secret), secret)
	secret.Data = data
	if err == nil {
		Expect(k8sClient.Update(suiteCtx, secret)).To(Succeed())
		return
	}
	Expect(k8sClient.Create(suiteCtx, secret)).To(Succeed())
}

func getBTR(btr *tokensv1alpha1.BankTokenRequest) *tokensv1alpha1.BankTokenRequest {
	out := &tokensv1alpha1.BankTokenRequest{}
	Expect(k8sClient.Get(suiteCtx, client.ObjectKeyFromObject(btr), out)).To(Succeed())
	return out
}

func readyCondition(btr *tokensv1alpha1.BankTokenRequest) *metav1.Condition {
	return meta.FindStatusCondition(getBTR(btr).Status.Conditions, tokensv1alpha1.ConditionReady)
}

// eventuallyReady waits for Ready=True with the given reason and returns the output Secret.
func eventuallyReady(btr *tokensv1alpha1.BankTokenRequest, reason string) *corev1.Secret {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		c := readyCondition(btr)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(c.Reason).To(Equal(reason), c.Message)
	}).WithTimeout(20 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return outputSecret(btr)
}

func outputSecret(btr *tokensv1alpha1.BankTokenRequest) *corev1.Secret {
	secret := &corev1.Secret{}
	Expect(k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: btr.Namespace, Name: outputSecretName(btr)}, secret)).To(Succeed())
	seenSecrets.add(string(secret.Data[tokensv1alpha1.SecretKeyAccessToken]))
	return secret
}

func refreshTokenIn(btr *tokensv1alpha1.BankTokenRequest) string {
	secret := &corev1.Secret{}
	if err := k8sClient.Get(suiteCtx, types.NamespacedName{Namespace: btr.Namespace, Name: refreshSecretName(btr)}, secret); err != nil {
		return ""
	}
	rt := string(secret.Data[refreshTokenKey])
	seenSecrets.add(rt)
	return rt
}

func accessTokenIn(secret *corev1.Secret) string {
	return string(secret.Data[tokensv1alpha1.SecretKeyAccessToken])
}

// eventReasons lists the reasons of events about a resource, in order.
func eventReasons(btr *tokensv1alpha1.BankTokenRequest) []string {
	list := &eventsv1.EventList{}
	Expect(k8sClient.List(suiteCtx, list, client.InNamespace(btr.Namespace))).To(Succeed())
	var reasons []string
	for _, e := range list.Items {
		if e.Regarding.Name == btr.Name {
			reasons = append(reasons, e.Reason)
		}
	}
	return reasons
}

// seenSecrets collects every token and credential the tests handled, for the leak check.
var seenSecrets = &secretSet{}

type secretSet struct{ values []string }

func (s *secretSet) add(v string) {
	if len(v) >= 6 {
		s.values = append(s.values, v)
	}
}
