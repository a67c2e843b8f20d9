package callbudget

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

func TestLimitsOfDefaultsAsTheAPIDoes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		budget *tokensv1alpha1.CallBudget
		want   Limits
	}{
		{"absent", nil, perMinute(60)},
		{"empty", &tokensv1alpha1.CallBudget{}, perMinute(60)},
		{"calls only", &tokensv1alpha1.CallBudget{Calls: ptr.To[int32](5)}, perMinute(5)},
		{"both", &tokensv1alpha1.CallBudget{Calls: ptr.To[int32](1000), Interval: &metav1.Duration{Duration: time.Hour}},
			Limits{Calls: 1000, Interval: time.Hour}},
		{"zero, older than the validation", &tokensv1alpha1.CallBudget{Calls: ptr.To[int32](0), Interval: &metav1.Duration{}}, perMinute(60)},
	} {
		if got := LimitsOf(tc.budget); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// A spec edit applies at the next take: a raised budget grants at once, a lowered one
// refuses at once and counts the calls already made against the new limit.
func TestLimitsChangeAppliesAtOnce(t *testing.T) {
	b := noSpacing(Options{})
	fill(t, b, bankA, perMinute(60), at(0))
	mustRefuse(t, b, bankA, perMinute(60), Claim{Requester: "r"}, at(time.Second), RefusedWindowFull)

	mustGrant(t, b, bankA, perMinute(120), Claim{Requester: "r"}, at(time.Second))
	if s := b.Snapshot(bankA, at(time.Second)); s.Calls != 61 || s.Limits != perMinute(120) {
		t.Errorf("snapshot after raising: %+v", s)
	}

	// Lowered to 10, with 61 calls in the window: none until only 9 are left in it, when
	// the 60 made at 0 leave at 1m; the one made at 1s stays.
	mustRefuse(t, b, bankA, perMinute(10), Claim{Requester: "s"}, at(2*time.Second), RefusedWindowFull)
	mustRefuse(t, b, bankA, perMinute(10), Claim{Requester: "s"}, at(time.Minute-time.Nanosecond), RefusedWindowFull)
	mustGrant(t, b, bankA, perMinute(10), Claim{Requester: "s"}, at(time.Minute))
	if s := b.Snapshot(bankA, at(time.Minute)); s.Calls != 2 || s.Limits != perMinute(10) {
		t.Errorf("snapshot after lowering: %+v", s)
	}
}

// A longer interval counts the calls already made in it, even those a shorter one had let go.
func TestLongerIntervalCountsCallsAlreadyMade(t *testing.T) {
	b := noSpacing(Options{})
	fill(t, b, bankA, perMinute(60), at(0))
	hourly := Limits{Calls: 60, Interval: time.Hour}
	b.SetLimits(bankA, hourly)
	v := mustRefuse(t, b, bankA, hourly, Claim{Requester: "r"}, at(2*time.Minute), RefusedWindowFull)
	if !v.RetryAt.Equal(at(time.Hour)) {
		t.Errorf("told %s, want 1h: the 60 calls made at 0 count for an hour", v.RetryAt.Sub(start))
	}
	mustGrant(t, b, bankA, hourly, Claim{Requester: "r"}, at(time.Hour))
}

// The log keeps only a limit's worth of calls. Raised after a longer interval, the budget
// cannot know how many it dropped that are back in the window: it waits until the newest
// dropped has left, rather than trust an empty log.
func TestRaisedLimitAndIntervalDoNotTrustCallsForgotten(t *testing.T) {
	b := noSpacing(Options{})
	limits := perMinute(2)
	for i := range 5 { // calls at 0, 1m, 2m, 3m, 4m; the log keeps the last two
		mustGrant(t, b, bankA, limits, Claim{Requester: "r"}, at(time.Duration(i)*time.Minute))
	}
	wider := Limits{Calls: 4, Interval: 10 * time.Minute}
	// Truly, the window of 10m at 4m holds 5 calls. The log holds 2, and knows the 3
	// dropped were made at 2m or before: so none until 12m, when they have surely left.
	mustRefuse(t, b, bankA, wider, Claim{Requester: "r"}, at(4*time.Minute+time.Second), RefusedWindowFull)
	mustRefuse(t, b, bankA, wider, Claim{Requester: "r"}, at(12*time.Minute-time.Nanosecond), RefusedWindowFull)
	mustGrant(t, b, bankA, wider, Claim{Requester: "r"}, at(12*time.Minute))
	if s := b.Snapshot(bankA, at(12*time.Minute)); s.Calls != 3 {
		t.Errorf("%d calls in the window ending at 12m, want 3 (3m, 4m, 12m)", s.Calls)
	}
}
