package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Token states: where a BankTokenRequest stands, in one word, as the banktoken_token_state
// metric, the dashboard and kubectl btr name it. Derived from the conditions, not stored.
const (
	TokenStateReady          = "Ready"
	TokenStateRefreshFailing = "RefreshFailing"
	TokenStateExpired        = "Expired"
	TokenStateStalled        = "Stalled"
	TokenStateSuspended      = "Suspended"
	TokenStatePending        = "Pending"
)

// TokenStates lists every token state.
var TokenStates = []string{TokenStateReady, TokenStateRefreshFailing, TokenStateExpired, TokenStateStalled, TokenStateSuspended, TokenStatePending}

// TokenState reads the state from status: Stalled first, as it needs a person; then what
// Ready says of the token the workload holds.
func TokenState(status *BankTokenRequestStatus) string {
	if meta.IsStatusConditionTrue(status.Conditions, ConditionStalled) {
		return TokenStateStalled
	}
	ready := meta.FindStatusCondition(status.Conditions, ConditionReady)
	switch {
	case ready == nil:
		return TokenStatePending
	case ready.Reason == ReasonSuspended:
		return TokenStateSuspended
	case ready.Reason == ReasonTokenExpired:
		return TokenStateExpired
	case ready.Status == metav1.ConditionTrue && (ready.Reason == ReasonRefreshFailing || status.FailedAttempts > 0):
		return TokenStateRefreshFailing
	case ready.Status == metav1.ConditionTrue:
		return TokenStateReady
	}
	return TokenStatePending
}
