package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// A resource admitted before the CRD's rules (or with validation off) must still cost no
// bank call that cannot end well: each of these is Stalled before anything is read or sent.
func TestReconcileRefusesWhatTheApiserverWouldRefuseBeforeAnyCall(t *testing.T) {
	for name, tc := range map[string]struct {
		mutate func(*tokensv1alpha1.BankTokenRequest)
		reason string
		detail string
	}{
		"a template label value the apiserver refuses": {func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.SecretTemplate = &tokensv1alpha1.SecretTemplate{Labels: map[string]tokensv1alpha1.LabelValue{"team": "payments team!"}}
		}, tokensv1alpha1.ReasonInvalidSecretTemplate, `spec.secretTemplate.labels: Invalid value: "payments team!"`},
		"a template label that opts the output Secret in as credentials": {func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.SecretTemplate = &tokensv1alpha1.SecretTemplate{Labels: map[string]tokensv1alpha1.LabelValue{tokensv1alpha1.CredentialsLabel: "true"}}
		}, tokensv1alpha1.ReasonInvalidSecretTemplate, "spec.secretTemplate.labels[tokens.banktoken.io/credentials]: Forbidden"},
		"template annotations over the apiserver's size limit": {func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.SecretTemplate = &tokensv1alpha1.SecretTemplate{Annotations: map[string]tokensv1alpha1.AnnotationValue{"note": tokensv1alpha1.AnnotationValue(make([]byte, 300<<10))}}
		}, tokensv1alpha1.ReasonInvalidSecretTemplate, "spec.secretTemplate.annotations: Too long"},
		"a credentials Secret name with a slash": {func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.CredentialsSecretRef.Name = "other/paymob-credentials"
		}, tokensv1alpha1.ReasonInvalidReference, `spec.credentialsSecretRef.name "other/paymob-credentials" is not a valid object name`},
		"a client certificate Secret named '..'": {func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.TLS = &tokensv1alpha1.TLSConfig{ClientCertificateSecretRef: &tokensv1alpha1.LocalSecretReference{Name: ".."}}
		}, tokensv1alpha1.ReasonInvalidReference, "spec.tls.clientCertificateSecretRef.name"},
		"an output Secret named where the refresh token is kept": {func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.SecretName = b.Name + refreshSecretSuffix
		}, tokensv1alpha1.ReasonSecretNameConflict, "where this request's refresh token is kept"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, tc.mutate)
			f.reconcile()
			f.expectCalls(0)
			f.expectReady(metav1.ConditionFalse, tc.reason, tc.detail)
			f.expectCondition(tokensv1alpha1.ConditionStalled, true)
		})
	}
}

// A fixed reference is acted on, and the stale reason goes with the problem.
func TestReconcileClearsAnInvalidReferenceOnceItIsFixed(t *testing.T) {
	f := newFixture(t, func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.CredentialsSecretRef.Name = "a/b" })
	f.reconcile()
	f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonInvalidReference)
	f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.CredentialsSecretRef.Name = "paymob-credentials" })
	f.reconcile()
	f.expectCalls(1)
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
	f.expectCondition(tokensv1alpha1.ConditionStalled, false)
}

// Whatever the flags, a service account token and a Secret the operator writes are never
// sent to a token endpoint through a *Key override.
func TestReconcileNeverSendsAServiceAccountTokenOrAnOwnedSecret(t *testing.T) {
	for name, secret := range map[string]*corev1.Secret{
		"a service account token": {ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "builder-token",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "builder"}},
			Type: corev1.SecretTypeServiceAccountToken, Data: map[string][]byte{"token": []byte("fixture-sa-token")}},
		"another request's output Secret": {ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "builder-token",
			Labels: map[string]string{tokensv1alpha1.SecretRoleLabel: tokensv1alpha1.SecretRoleToken, tokensv1alpha1.CredentialsLabel: "true"}},
			Data: map[string][]byte{"token": []byte("fixture-access")}},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, func(b *tokensv1alpha1.BankTokenRequest) {
				b.Spec.GrantType = tokensv1alpha1.GrantType(providers.GrantClientCredentials)
				b.Spec.CredentialsSecretRef = tokensv1alpha1.CredentialsSecretReference{Name: "builder-token", ClientIDKey: "token", ClientSecretKey: "token"}
			})
			must(t, f.client.Create(context.Background(), secret))
			f.reconcile()
			f.expectCalls(0)
			f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonCredentialsSecretRefused, "payments/builder-token")
		})
	}
}

// Editing the spec after a failure deserves a prompt try, but editing it in a loop must not
// buy a bank call per edit: the tries are at least the backoff apart, at most
// changedInputRetryCap.
func TestReconcileRateLimitsTheRetryThatAnInputChangeForces(t *testing.T) {
	f := newFixture(t)
	for range 100 {
		f.bank.failWith(bankError(providers.ClassPermanent, providers.ReasonInvalidCredentials))
	}
	f.reconcile()
	f.expectCalls(1)
	const minutes = 5
	for i := range minutes * 60 {
		f.clock.Step(time.Second)
		f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Scope = "read-" + time.Duration(i).String() })
		f.reconcile()
	}
	if calls, most := len(f.bank.calls), 1+minutes*60/int(changedInputRetryCap/time.Second)+1; calls > most {
		t.Fatalf("%d edits in %d minutes made %d bank calls; want at most %d", minutes*60, minutes, calls, most)
	}
	if len(f.bank.calls) < 3 {
		t.Fatalf("edits were not retried at all: %d calls", len(f.bank.calls))
	}
}
