package controller

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

var (
	t0  = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	uid = types.UID("8d3c1b3e-0000-4000-8000-000000000001")
)

func request(mutate ...func(*tokensv1alpha1.BankTokenRequest)) *tokensv1alpha1.BankTokenRequest {
	btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{UID: uid, Name: "paymob", Generation: 1}}
	for _, m := range mutate {
		m(btr)
	}
	return btr
}

func heldFor(lifetime time.Duration, hash string) *heldToken {
	return &heldToken{IssuedAt: t0, ExpiresAt: t0.Add(lifetime), RequestHash: hash}
}

func TestNeedsIssuance(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         policyInput
		wantReason string
	}{
		{"no output Secret", policyInput{Request: request(), HeldProblem: "the output Secret does not exist", RequestHash: "h", Now: t0}, issueReasonNoToken},
		{"fresh token, same request", policyInput{Request: request(), Held: heldFor(time.Hour, "h"), RequestHash: "h", Now: t0.Add(time.Minute)}, ""},
		{"credentials or spec changed", policyInput{Request: request(), Held: heldFor(time.Hour, "old"), RequestHash: "new", Now: t0.Add(time.Minute)}, issueReasonRequestChanged},
		{"refresh requested once", policyInput{Request: request(func(b *tokensv1alpha1.BankTokenRequest) {
			b.Annotations = map[string]string{tokensv1alpha1.RefreshRequestedAtAnnotation: "2026-11-22T08:01:00Z"}
		}), Held: heldFor(time.Hour, "h"), RequestHash: "h", Now: t0.Add(time.Minute)}, issueReasonRefreshRequested},
		{"refresh request already acted on", policyInput{Request: request(func(b *tokensv1alpha1.BankTokenRequest) {
			b.Annotations = map[string]string{tokensv1alpha1.RefreshRequestedAtAnnotation: "2026-11-22T08:01:00Z"}
			b.Status.LastRefreshRequestedAt = "2026-11-22T08:01:00Z"
		}), Held: heldFor(time.Hour, "h"), RequestHash: "h", Now: t0.Add(time.Minute)}, ""},
		{"expired", policyInput{Request: request(), Held: heldFor(time.Hour, "h"), RequestHash: "h", Now: t0.Add(2 * time.Hour)}, issueReasonExpired},
		{"two thirds of the lifetime passed", policyInput{Request: request(), Held: heldFor(time.Hour, "h"), RequestHash: "h", Now: t0.Add(40 * time.Minute)}, issueReasonRenewalDue},
		{"just before the jittered renewal window", policyInput{Request: request(), Held: heldFor(time.Hour, "h"), RequestHash: "h", Now: t0.Add(35 * time.Minute)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, _, issue := needsIssuance(tc.in)
			if reason != tc.wantReason || issue != (tc.wantReason != "") {
				t.Fatalf("needsIssuance = (%q, %v), want %q", reason, issue, tc.wantReason)
			}
		})
	}
}

func TestRenewalTime(t *testing.T) {
	for _, tc := range []struct {
		name             string
		spec             tokensv1alpha1.BankTokenRequestSpec
		lifetime         time.Duration
		earliest, latest time.Duration // after issue
		delay            time.Duration // the secret propagation delay; 2m when zero
	}{
		{"default: two thirds of the lifetime, up to 20% of the last third earlier", tokensv1alpha1.BankTokenRequestSpec{},
			time.Hour, 36 * time.Minute, 40 * time.Minute, 0},
		{"renewBefore", tokensv1alpha1.BankTokenRequestSpec{RenewBefore: &metav1.Duration{Duration: 5 * time.Minute}},
			time.Hour, 54 * time.Minute, 55 * time.Minute, 0},
		{"renewBefore longer than the lifetime falls back to two thirds", tokensv1alpha1.BankTokenRequestSpec{RenewBefore: &metav1.Duration{Duration: 2 * time.Hour}},
			time.Hour, 36 * time.Minute, 40 * time.Minute, 0},
		{"renewBeforePercentage", tokensv1alpha1.BankTokenRequestSpec{RenewBeforePercentage: ptr.To[int32](25)},
			time.Hour, 42 * time.Minute, 45 * time.Minute, 0},
		{"a three-year token is refreshed within the default 24h", tokensv1alpha1.BankTokenRequestSpec{},
			99992564 * time.Second, 24*time.Hour - 24*time.Hour/5, 24 * time.Hour, 0},
		{"maxRefreshInterval caps it", tokensv1alpha1.BankTokenRequestSpec{MaxRefreshInterval: &metav1.Duration{Duration: 10 * time.Minute}},
			time.Hour, 8 * time.Minute, 10 * time.Minute, 0},
		{"a tiny lifetime is not a hot loop", tokensv1alpha1.BankTokenRequestSpec{},
			time.Second, time.Second, time.Second, 0},
		{"Banfico's 300 s token leaves the 2m propagation delay: renewed by 180 s", tokensv1alpha1.BankTokenRequestSpec{},
			300 * time.Second, 156 * time.Second, 180 * time.Second, 0},
		{"a lifetime under twice the delay keeps two thirds", tokensv1alpha1.BankTokenRequestSpec{},
			200 * time.Second, 126 * time.Second, 134 * time.Second, 0},
		{"no propagation delay: two thirds", tokensv1alpha1.BankTokenRequestSpec{},
			300 * time.Second, 180 * time.Second, 200 * time.Second, time.Nanosecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			delay := tc.delay
			if delay == 0 {
				delay = DefaultSecretPropagationDelay
			}
			got := renewalTime(&tc.spec, uid, t0, t0.Add(tc.lifetime), delay).Sub(t0)
			if got < tc.earliest || got > tc.latest {
				t.Fatalf("renewal %s after issue, want between %s and %s", got, tc.earliest, tc.latest)
			}
		})
	}
}

// Tokens issued together must not be renewed together.
func TestRenewalTimesSpreadAcrossResources(t *testing.T) {
	spec := &tokensv1alpha1.BankTokenRequestSpec{}
	window := 20 * time.Minute // the last third of a one-hour token
	earliest, latest := t0.Add(time.Hour), t0
	for i := range 1000 {
		at := renewalTime(spec, types.UID(string(rune('a'+i%26))+time.Duration(i).String()), t0, t0.Add(time.Hour), DefaultSecretPropagationDelay)
		earliest, latest = minTime(earliest, at), maxTime(latest, at)
	}
	if spread := latest.Sub(earliest); spread < window/10 {
		t.Fatalf("1000 renewals spread over %s, want at least 10%% of the %s window", spread, window)
	}
}

func TestRetryDelay(t *testing.T) {
	previous := time.Duration(0)
	for attempts := int32(1); attempts <= 5; attempts++ {
		d := retryDelay(uid, attempts, 0)
		nominal := backoffBase << (attempts - 1)
		if d < nominal*8/10 || d > nominal*12/10 {
			t.Fatalf("attempt %d: delay %s, want %s ±20%%", attempts, d, nominal)
		}
		if d <= previous {
			t.Fatalf("attempt %d: delay %s did not grow from %s", attempts, d, previous)
		}
		previous = d
	}
	if d := retryDelay(uid, 40, 0); d > backoffCap*12/10 {
		t.Fatalf("delay %s after 40 attempts exceeds the cap", d)
	}
	if d := retryDelay(uid, 1, 90*time.Second); d != 90*time.Second {
		t.Fatalf("Retry-After 90s gave a delay of %s", d)
	}
}

func TestRetryGate(t *testing.T) {
	failed := func(b *tokensv1alpha1.BankTokenRequest) {
		b.Status.FailedAttempts = 2
		b.Status.LastFailureRequestHash = "h"
		b.Status.RenewalTime = &metav1.Time{Time: t0.Add(time.Minute)}
	}
	stalled := func(b *tokensv1alpha1.BankTokenRequest) {
		b.Status.Conditions = []metav1.Condition{{Type: tokensv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "InvalidCredentials"}}
	}
	for _, tc := range []struct {
		name      string
		btr       *tokensv1alpha1.BankTokenRequest
		hash      string
		now       time.Time
		wantWait  bool
		wantUntil time.Time
	}{
		{"no failure", request(), "h", t0, false, time.Time{}},
		{"backing off", request(failed), "h", t0, true, t0.Add(time.Minute)},
		{"backoff over", request(failed), "h", t0.Add(2 * time.Minute), false, time.Time{}},
		{"inputs changed since the failure", request(failed), "new", t0, false, time.Time{}},
		{"permanent failure waits for a change", request(failed, stalled), "h", t0.Add(time.Hour), true, time.Time{}},
		{"a change ends a permanent failure", request(failed, stalled), "new", t0, false, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait, until := retryGate(policyInput{Request: tc.btr, RequestHash: tc.hash, Now: tc.now})
			if wait != tc.wantWait || !until.Equal(tc.wantUntil) {
				t.Fatalf("retryGate = (%v, %s), want (%v, %s)", wait, until, tc.wantWait, tc.wantUntil)
			}
		})
	}
}

func TestReadHeldTokenNoticesTampering(t *testing.T) {
	tok := outputSecretData(&fakeToken)
	secret := secretWith(tok)
	if held, problem := readHeldToken(secret); held == nil || problem != "" {
		t.Fatalf("intact Secret not recognised: %s", problem)
	}
	secret.Data["access_token"] = []byte("edited")
	if held, problem := readHeldToken(secret); held != nil || problem != "the output Secret was altered" {
		t.Fatalf("altered Secret accepted (problem %q)", problem)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

var fakeToken = providersToken()
