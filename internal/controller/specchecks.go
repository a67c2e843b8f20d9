package controller

import (
	"fmt"
	"sort"
	"strings"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// The checks below repeat, before anything is read or sent, what the CRD refuses at
// admission: a resource admitted before those rules existed (or applied with validation
// off) must still never cost a bank call that cannot end well, nor a read the apiserver
// refuses over and over. They use the apiserver's own validation functions, so that what
// passes here is what the apiserver takes on the Secret.

// reservedKeyPrefix is the operator's: its labels select owned Secrets and opt Secrets in
// as credentials.
const reservedKeyPrefix = "tokens.banktoken.io/"

// checkSpec returns the first problem with the spec that no read or call can fix, nil when
// there is none.
func checkSpec(btr *tokensv1alpha1.BankTokenRequest) *inputProblem {
	for _, check := range []func(*tokensv1alpha1.BankTokenRequest) *inputProblem{
		checkReferenceNames, checkSecretNames, checkSecretTemplate,
	} {
		if problem := check(btr); problem != nil {
			return problem
		}
	}
	return nil
}

// checkReferenceNames refuses a referenced name that no object can have ("a/b", "..").
func checkReferenceNames(btr *tokensv1alpha1.BankTokenRequest) *inputProblem {
	type reference struct{ field, name string }
	spec := &btr.Spec
	refs := []reference{{"spec.credentialsSecretRef.name", spec.CredentialsSecretRef.Name}}
	if spec.ClientAssertion != nil {
		refs = append(refs, reference{"spec.clientAssertion.privateKeySecretRef.name", spec.ClientAssertion.PrivateKeySecretRef.Name})
	}
	if tls := spec.TLS; tls != nil && tls.CABundleRef != nil {
		refs = append(refs, reference{"spec.tls.caBundleRef.name", tls.CABundleRef.Name})
	}
	if tls := spec.TLS; tls != nil && tls.ClientCertificateSecretRef != nil {
		refs = append(refs, reference{"spec.tls.clientCertificateSecretRef.name", tls.ClientCertificateSecretRef.Name})
	}
	for _, ref := range refs {
		if errs := validation.IsDNS1123Subdomain(ref.name); len(errs) > 0 {
			return &inputProblem{tokensv1alpha1.ReasonInvalidReference,
				fmt.Sprintf("%s %q is not a valid object name: %s", ref.field, ref.name, strings.Join(errs, "; "))}
		}
	}
	return nil
}

// checkSecretNames refuses an output Secret named like the refresh-token Secret: the
// two writers would overwrite each other, and workloads would mount the refresh token.
func checkSecretNames(btr *tokensv1alpha1.BankTokenRequest) *inputProblem {
	if outputSecretName(btr) == refreshSecretName(btr) {
		return &inputProblem{tokensv1alpha1.ReasonSecretNameConflict, fmt.Sprintf(
			"spec.secretName %q is where this request's refresh token is kept; choose another name", outputSecretName(btr))}
	}
	return nil
}

// checkSecretTemplate refuses labels and annotations the apiserver would refuse on the
// output Secret, and any under the operator's own prefix.
func checkSecretTemplate(btr *tokensv1alpha1.BankTokenRequest) *inputProblem {
	template := btr.Spec.SecretTemplate
	if template == nil {
		return nil
	}
	path := field.NewPath("spec", "secretTemplate")
	errs := metav1validation.ValidateLabels(template.LabelMap(), path.Child("labels"))
	errs = append(errs, apivalidation.ValidateAnnotations(template.AnnotationMap(), path.Child("annotations"))...)
	for _, key := range reservedKeys(template.Labels) {
		errs = append(errs, field.Forbidden(path.Child("labels").Key(key), "set by the operator only"))
	}
	for _, key := range reservedKeys(template.Annotations) {
		errs = append(errs, field.Forbidden(path.Child("annotations").Key(key), "set by the operator only"))
	}
	if len(errs) == 0 {
		return nil
	}
	// Maps iterate at random: sorted, the message (and so status) is the same every time.
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	// The field errors quote the offending key and value: the user's own spec, never a secret.
	return &inputProblem{tokensv1alpha1.ReasonInvalidSecretTemplate,
		"the output Secret cannot carry this template: " + errs.ToAggregate().Error()}
}

// reservedKeys are the keys under reservedKeyPrefix, sorted so the message is stable.
func reservedKeys[V ~string](m map[string]V) []string {
	var keys []string
	for key := range m {
		if strings.HasPrefix(key, reservedKeyPrefix) {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	return keys
}
