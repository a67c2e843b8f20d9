package controller

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// labelSecret sets the opt-in label on a Secret of the fixture's namespace to value.
func (f *fixture) labelSecret(name, value string) {
	f.t.Helper()
	s := f.secret(name)
	s.Labels = map[string]string{tokensv1alpha1.CredentialsLabel: value}
	must(f.t, f.client.Update(context.Background(), s))
}

func TestWithoutTheLabelRequirementAnUnlabelledCredentialsSecretIsRead(t *testing.T) {
	f := newFixture(t)
	f.reconcile()
	f.expectCalls(1)
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
}

// With the requirement on, a Secret without the label (or with another value) is not read:
// no call, Stalled naming the Secret and the label to add. Adding it is acted on.
func TestWithTheLabelRequirementOnlyOptedInCredentialsAreSent(t *testing.T) {
	f := newFixture(t)
	f.r.CredentialsLabelRequired = true
	f.reconcile()
	f.expectCalls(0)
	f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonCredentialsNotOptedIn,
		"credentials Secret payments/paymob-credentials does not carry the label tokens.banktoken.io/credentials=true",
		"kubectl label secret -n payments paymob-credentials tokens.banktoken.io/credentials=true")
	f.expectCondition(tokensv1alpha1.ConditionStalled, true)

	f.labelSecret("paymob-credentials", "yes")
	f.reconcile()
	f.expectCalls(0)
	f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonCredentialsNotOptedIn)

	f.labelSecret("paymob-credentials", tokensv1alpha1.CredentialsLabelValue)
	f.reconcile()
	f.expectCalls(1)
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
	f.expectCondition(tokensv1alpha1.ConditionStalled, false)
}

func TestWithTheLabelRequirementAnUnlabelledClientAssertionKeyIsNotRead(t *testing.T) {
	f := newFixture(t, func(b *tokensv1alpha1.BankTokenRequest) {
		b.Spec.ClientAuthentication = tokensv1alpha1.ClientAuthentication("PrivateKeyJWT")
		b.Spec.ClientAssertion = &tokensv1alpha1.ClientAssertion{
			PrivateKeySecretRef: tokensv1alpha1.PrivateKeySecretReference{Name: "paymob-signing-key"}}
	})
	must(t, f.client.Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "paymob-signing-key"},
		Data:       map[string][]byte{tokensv1alpha1.DefaultPrivateKeyKey: []byte("fixture-not-a-pem-key")}}))
	f.r.CredentialsLabelRequired = true
	f.labelSecret("paymob-credentials", tokensv1alpha1.CredentialsLabelValue)
	f.reconcile()
	f.expectCalls(0)
	f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonCredentialsNotOptedIn,
		"client assertion key Secret payments/paymob-signing-key does not carry the label")
}
