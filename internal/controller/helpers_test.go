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
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

var namespaceCounter int

// newNamespace gives each test its own namespace, so writes can be counted per test.
func newNamespace() string {
	namespaceCounter++
	name := fmt.Sprintf("t%d-%d", namespaceCounter, time.Now().UnixNano()%100000)
	Expect(k8sClient.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	// envtest runs no namespace controller: delete the test's resources so that none keeps
	// calling the shared fake banks during later tests.
	DeferCleanup(func() {
		recordStatus(name)
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
// Secret and a BankTokenRequest for one sandbox bank, and returns the request.
func applyBank(namespace string, name providers.Name, mutate ...func(*tokensv1alpha1.BankTokenRequest)) *tokensv1alpha1.BankTokenRequest {
	request := harness.NewSandboxRequest(bank, name, namespace, strings.ToLower(string(name)))
	for _, m := range mutate {
		m(request.Request)
	}
	Expect(request.Apply(suiteCtx, k8sClient)).To(Succeed())
	return request.Request
}

func createOrUpdateSecret(namespace, name string, data map[string][]byte) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Data: data}
	Expect(harness.CreateOrUpdate(suiteCtx, k8sClient, secret)).To(Succeed())
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
	_, err := harness.WaitForReady(suiteCtx, k8sClient, btr, metav1.ConditionTrue, reason, 20*time.Second)
	Expect(err).NotTo(HaveOccurred())
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
