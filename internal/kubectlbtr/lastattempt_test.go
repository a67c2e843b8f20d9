package kubectlbtr

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

func TestStatusNamesTheLastTokenCallsInteractionID(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 30, 0, 0, time.UTC)
	a := &tokensv1alpha1.TokenCallAttempt{Time: metav1.NewTime(now.Add(-3 * time.Minute)), Outcome: tokensv1alpha1.TokenCallFailed,
		Reason: "InvalidScope", InteractionID: "3b1f0c1e-6a8e-4d6f-9a52-1f0e7a1c2d44"}
	got := lastAttempt(a, now)
	if !strings.HasPrefix(got, "Failed InvalidScope, ") || !strings.HasSuffix(got, ", x-fapi-interaction-id 3b1f0c1e-6a8e-4d6f-9a52-1f0e7a1c2d44") {
		t.Errorf("lastAttempt = %q", got)
	}
	a.Reason, a.InteractionID, a.Outcome = "", "", tokensv1alpha1.TokenCallSucceeded
	if got := lastAttempt(a, now); !strings.HasPrefix(got, "Succeeded, ") || strings.Contains(got, "interaction") {
		t.Errorf("lastAttempt without an id = %q", got)
	}
}
