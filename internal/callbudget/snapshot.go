package callbudget

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Snapshot is a connection's budget as its status shows it.
type Snapshot struct {
	// Calls is how many calls were made in the window that ends now.
	Calls  int
	Limits Limits
	// PausedUntil is when the bank's pause ends; zero when the connection is not paused.
	PausedUntil time.Time
	// PauseReason is what the bank answered (the reason Pause was given).
	PauseReason string
	// Waiting is how many refused requests hold a place for a turn.
	Waiting int
}

func (c *connection) snapshot(now time.Time) Snapshot {
	s := Snapshot{Calls: c.log.callsAfter(c.windowStart(now)), Limits: c.limits, Waiting: c.waiting.freshCount(now)}
	if c.paused(now) {
		s.PausedUntil, s.PauseReason = c.pausedUntil, c.pauseReason
	}
	return s
}

// Status is the snapshot as a connection's status.budget.
func (s Snapshot) Status() *tokensv1alpha1.CallBudgetStatus {
	status := &tokensv1alpha1.CallBudgetStatus{
		Calls:    int32(s.Calls),
		Limit:    int32(s.Limits.Calls),
		Interval: metav1.Duration{Duration: s.Limits.Interval},
	}
	if !s.PausedUntil.IsZero() {
		status.PausedUntil = &metav1.Time{Time: s.PausedUntil}
	}
	return status
}
