package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// setReady sets the Ready condition. meta.SetStatusCondition keeps lastTransitionTime when
// the status does not change, so a repeated reconcile writes nothing new.
func setReady(btr *tokensv1alpha1.BankTokenRequest, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&btr.Status.Conditions, metav1.Condition{
		Type: tokensv1alpha1.ConditionReady, Status: status, Reason: reason, Message: message,
		ObservedGeneration: btr.Generation,
	})
}

// setReconciling marks that the operator is still working towards a token; passing an
// empty reason removes the condition, which kstatus wants present only when true.
func setReconciling(btr *tokensv1alpha1.BankTokenRequest, reason, message string) {
	setAbnormalTrue(btr, tokensv1alpha1.ConditionReconciling, reason, message)
}

// setStalled marks that the operator cannot progress until the spec or a referenced object
// changes; an empty reason removes it.
func setStalled(btr *tokensv1alpha1.BankTokenRequest, reason, message string) {
	setAbnormalTrue(btr, tokensv1alpha1.ConditionStalled, reason, message)
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
	c := meta.FindStatusCondition(btr.Status.Conditions, tokensv1alpha1.ConditionReady)
	return c != nil && c.Reason == reason && c.ObservedGeneration == btr.Generation
}
