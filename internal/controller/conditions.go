package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Condition types, in kstatus style: Ready is always present once reconciled; Reconciling
// and Stalled are present only while true.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
)

// Reasons a user sees on the Ready condition. Each says what happened and, for a failure,
// points at what to fix. Provider failure reasons (InvalidCredentials, RateLimited,
// EndpointUnreachable, ...) come from internal/providers and are used as they are.
const (
	// ReasonTokenIssued: the output Secret holds a valid token.
	ReasonTokenIssued = "TokenIssued"
	// ReasonRefreshFailing: the current token still works, but renewing it is failing.
	ReasonRefreshFailing = "RefreshFailing"
	// ReasonTokenExpired: the token expired and no new one could be obtained.
	ReasonTokenExpired = "TokenExpired"
	// ReasonSuspended: spec.suspend is true; nothing is called.
	ReasonSuspended = "Suspended"
	// ReasonCredentialsSecretNotFound: the credentials Secret does not exist.
	ReasonCredentialsSecretNotFound = "CredentialsSecretNotFound"
	// ReasonCredentialsKeyMissing: the credentials Secret lacks a key the grant needs.
	ReasonCredentialsKeyMissing = "CredentialsKeyMissing"
	// ReasonTLSSecretNotFound: a CA bundle or client certificate object does not exist.
	ReasonTLSSecretNotFound = "TLSSecretNotFound"
	// ReasonInsecureEndpoint: the endpoint is http and the operator was not started to allow it.
	ReasonInsecureEndpoint = "InsecureEndpoint"
	// ReasonSecretConflict: the output or refresh-token Secret exists and belongs to something else.
	ReasonSecretConflict = "SecretConflict"
	// ReasonInternalError: the operator could not read or write Kubernetes objects.
	ReasonInternalError = "InternalError"
)

// setReady sets the Ready condition. meta.SetStatusCondition keeps lastTransitionTime when
// the status does not change, so a repeated reconcile writes nothing new.
func setReady(btr *tokensv1alpha1.BankTokenRequest, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&btr.Status.Conditions, metav1.Condition{
		Type: ConditionReady, Status: status, Reason: reason, Message: message,
		ObservedGeneration: btr.Generation,
	})
}

// setReconciling marks that the operator is still working towards a token; passing an
// empty reason removes the condition, which kstatus wants present only when true.
func setReconciling(btr *tokensv1alpha1.BankTokenRequest, reason, message string) {
	setAbnormalTrue(btr, ConditionReconciling, reason, message)
}

// setStalled marks that the operator cannot progress until the spec or a referenced object
// changes; an empty reason removes it.
func setStalled(btr *tokensv1alpha1.BankTokenRequest, reason, message string) {
	setAbnormalTrue(btr, ConditionStalled, reason, message)
}

func setAbnormalTrue(btr *tokensv1alpha1.BankTokenRequest, conditionType, reason, message string) {
	if reason == "" {
		meta.RemoveStatusCondition(&btr.Status.Conditions, conditionType)
		return
	}
	meta.SetStatusCondition(&btr.Status.Conditions, metav1.Condition{
		Type: conditionType, Status: metav1.ConditionTrue, Reason: reason, Message: message,
		ObservedGeneration: btr.Generation,
	})
}

// isReadyReason reports whether Ready, as last written for this generation, has reason.
func isReadyReason(btr *tokensv1alpha1.BankTokenRequest, reason string) bool {
	c := meta.FindStatusCondition(btr.Status.Conditions, ConditionReady)
	return c != nil && c.Reason == reason && c.ObservedGeneration == btr.Generation
}
