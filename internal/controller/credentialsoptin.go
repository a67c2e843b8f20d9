package controller

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// optedIn says whether a Secret whose values go to the token endpoint (credentials, the
// client assertion key, the client certificate) may be read. With CredentialsLabelRequired
// it must carry the opt-in label: otherwise whoever may create a BankTokenRequest could
// send any key of any Secret in the namespace (a service account token, a database
// password) to an endpoint of their choosing. The input problem when it may not, else nil.
func (r *BankTokenRequestReconciler) optedIn(secret *corev1.Secret, what string) *inputProblem {
	if !r.CredentialsLabelRequired || secret.Labels[tokensv1alpha1.CredentialsLabel] == tokensv1alpha1.CredentialsLabelValue {
		return nil
	}
	return &inputProblem{tokensv1alpha1.ReasonCredentialsNotOptedIn, fmt.Sprintf(
		"%s Secret %s/%s does not carry the label %s=%s, which this operator requires before it reads a Secret "+
			"(kubectl label secret -n %s %s %s=%s)", what, secret.Namespace, secret.Name,
		tokensv1alpha1.CredentialsLabel, tokensv1alpha1.CredentialsLabelValue,
		secret.Namespace, secret.Name, tokensv1alpha1.CredentialsLabel, tokensv1alpha1.CredentialsLabelValue)}
}

// sendable refuses, whatever the flags, Secrets whose values are never a bank's credentials
// yet a tenant could point a *Key override at: a service account token (the operator would
// send a cluster credential to an endpoint of the tenant's choosing) and the Secrets this
// operator writes (another request's live token or refresh token). The input problem when
// it refuses, else nil.
func sendable(secret *corev1.Secret, what string) *inputProblem {
	refusal := ""
	switch {
	case secret.Type == corev1.SecretTypeServiceAccountToken:
		refusal = "is a service account token"
	case secret.Labels[tokensv1alpha1.SecretRoleLabel] != "":
		refusal = "is written by this operator (it holds a token)"
	default:
		return nil
	}
	return &inputProblem{tokensv1alpha1.ReasonCredentialsSecretRefused, fmt.Sprintf(
		"%s Secret %s/%s %s: the operator never sends its values to a token endpoint", what, secret.Namespace, secret.Name, refusal)}
}
