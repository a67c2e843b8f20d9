package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestTokenStateFollowsTheConditions(t *testing.T) {
	ready := func(status metav1.ConditionStatus, reason string) metav1.Condition {
		return metav1.Condition{Type: ConditionReady, Status: status, Reason: reason}
	}
	stalled := metav1.Condition{Type: ConditionStalled, Status: metav1.ConditionTrue, Reason: "InvalidCredentials"}
	cases := []struct {
		name       string
		conditions []metav1.Condition
		failed     int32
		want       string
	}{
		{"not reconciled yet", nil, 0, TokenStatePending},
		{"token issued", []metav1.Condition{ready(metav1.ConditionTrue, ReasonTokenIssued)}, 0, TokenStateReady},
		{"refresh failing, token valid", []metav1.Condition{ready(metav1.ConditionTrue, ReasonRefreshFailing)}, 2, TokenStateRefreshFailing},
		{"token expired", []metav1.Condition{ready(metav1.ConditionFalse, ReasonTokenExpired)}, 5, TokenStateExpired},
		{"stalled with a valid token", []metav1.Condition{ready(metav1.ConditionTrue, "InvalidCredentials"), stalled}, 1, TokenStateStalled},
		{"suspended", []metav1.Condition{ready(metav1.ConditionFalse, ReasonSuspended)}, 0, TokenStateSuspended},
		{"first token failing", []metav1.Condition{ready(metav1.ConditionFalse, "EndpointUnreachable")}, 3, TokenStatePending},
	}
	for _, c := range cases {
		status := &BankTokenRequestStatus{Conditions: c.conditions, FailedAttempts: c.failed}
		if got := TokenState(status); got != c.want {
			t.Errorf("%s: state %s, want %s", c.name, got, c.want)
		}
	}
}
