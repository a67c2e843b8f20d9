package controller

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

func TestReconcileIssuesATokenAndThenWritesNothingUntilRenewal(t *testing.T) {
	f := newFixture(t)
	result := f.reconcile()
	f.expectCalls(1)
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued, "renewal at")
	if f.accessToken() != "fixture-access-1" || f.refreshToken() != "fixture-refresh-1" {
		t.Fatal("the token or the refresh token was not stored")
	}
	if _, ok := f.secret("paymob").Data[refreshTokenKey]; ok {
		t.Fatal("workloads must not see the refresh token")
	}
	renewal := f.resource().Status.RenewalTime.Time
	if result.RequeueAfter != renewal.Sub(fixtureStart) || !renewal.Before(fixtureStart.Add(time.Hour)) {
		t.Fatalf("requeue after %s for a renewal at %s", result.RequeueAfter, renewal)
	}
	writes := len(f.writes)

	f.clock.SetTime(renewal.Add(-time.Second))
	result = f.reconcile()
	f.expectCalls(1)
	if len(f.writes) != writes {
		t.Fatalf("an idle reconcile wrote: %v", f.writes[writes:])
	}
	if result.RequeueAfter != time.Second {
		t.Fatalf("requeue after %s, want the second left until renewal", result.RequeueAfter)
	}
}

func TestReconcileRenewsWithTheRefreshTokenAndStoresTheRotatedOne(t *testing.T) {
	f := newFixture(t)
	f.issue()
	f.stepToRenewal()
	f.reconcile()
	f.expectLastCall(2, providers.GrantRefreshToken, "the renewal did not use the stored refresh token")
	if f.refreshToken() != "fixture-refresh-2" || f.accessToken() != "fixture-access-2" {
		t.Fatal("the rotated refresh token or the new access token was not stored")
	}

	// A bank that does not rotate leaves the current refresh token valid (RFC 6749 §6).
	f.bank.rotate = false
	f.stepToRenewal()
	f.reconcile()
	if f.refreshToken() != "fixture-refresh-2" {
		t.Fatal("a refresh that returned no refresh token dropped the current one")
	}
}

func TestReconcileFallsBackToThePrimaryGrantAtOnceWhenTheRefreshTokenIsRejected(t *testing.T) {
	f := newFixture(t)
	f.renewAnswering(bankError(providers.ClassRefreshTokenRejected, providers.ReasonRefreshTokenRejected))
	f.expectLastCall(3, providers.GrantPassword, "no fallback to the password grant in the same reconcile")
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
	if got := f.resource().Status.FailedAttempts; got != 0 {
		t.Fatalf("a fallback counted as %d failed attempts", got)
	}
	if !slices.Contains(f.events(), eventRefreshTokenRejected) {
		t.Fatal("no RefreshTokenRejected event")
	}
	if f.refreshToken() != "fixture-refresh-2" {
		t.Fatal("the password grant's refresh token was not stored")
	}
}

func TestReconcileKeepsAValidTokenWhileTheBankFailsAndBacksOff(t *testing.T) {
	f := newFixture(t)
	unavailable := bankError(providers.ClassTransient, providers.ReasonServerError)
	result := f.renewAnswering(unavailable, unavailable, unavailable, unavailable)
	token := "fixture-access-1"
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonRefreshFailing, "token valid until", "next attempt at")
	f.expectCondition(tokensv1alpha1.ConditionReconciling, false)
	firstDelay := result.RequeueAfter
	if firstDelay < 4*time.Second || firstDelay > 6*time.Second || f.accessToken() != token {
		t.Fatalf("first retry after %s (want 5s ±20%%), token kept: %v", firstDelay, f.accessToken() == token)
	}
	if !slices.Contains(f.events(), eventRefreshFailed) {
		t.Fatal("no RefreshFailed event")
	}

	// Before the backoff ends, nothing is sent.
	f.clock.Step(firstDelay / 2)
	f.reconcile()
	f.expectCalls(2)

	f.clock.Step(firstDelay)
	result = f.reconcile()
	f.expectCalls(3)
	if result.RequeueAfter <= firstDelay {
		t.Fatalf("backoff did not grow: %s after %s", result.RequeueAfter, firstDelay)
	}
	if f.resource().Status.FailedAttempts != 2 {
		t.Fatal("the second failure was not counted")
	}
}

func TestReconcileTurnsReadyFalseWhenTheTokenExpiresWhileRetriesWait(t *testing.T) {
	f := newFixture(t)
	limited := bankError(providers.ClassRateLimited, providers.ReasonRateLimited)
	limited.RetryAfter = 2 * time.Hour
	f.renewAnswering(limited)
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonRefreshFailing)

	expiry := f.resource().Status.ExpiresAt.Time
	f.clock.SetTime(expiry)
	result := f.reconcile()
	f.expectCalls(2)
	f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonTokenExpired, "obtaining a new one is failing (1 attempts")
	retryAt := f.resource().Status.RenewalTime.Time
	if result.RequeueAfter != retryAt.Sub(expiry) {
		t.Fatalf("requeue after %s, want at the Retry-After time %s", result.RequeueAfter, retryAt)
	}

	f.clock.SetTime(retryAt)
	f.reconcile()
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
	if !slices.Contains(f.events(), eventRecovered) {
		t.Fatal("no Recovered event")
	}
}

func TestReconcileHonoursRetryAfter(t *testing.T) {
	f := newFixture(t)
	limited := bankError(providers.ClassRateLimited, providers.ReasonRateLimited)
	limited.RetryAfter = 40 * time.Second
	f.bank.failWith(limited)
	result := f.reconcile()
	if result.RequeueAfter != 40*time.Second {
		t.Fatalf("requeue after %s, want the bank's Retry-After of 40s", result.RequeueAfter)
	}
	f.expectReady(metav1.ConditionFalse, providers.ReasonRateLimited)
	f.expectCondition(tokensv1alpha1.ConditionReconciling, true)
	f.clock.Step(39 * time.Second)
	f.reconcile()
	f.expectCalls(1)
}

func TestReconcileDoesNotRetryAPermanentFailureUntilTheInputsChange(t *testing.T) {
	f := newFixture(t)
	f.bank.failWith(bankError(providers.ClassPermanent, providers.ReasonInvalidCredentials))
	result := f.reconcile()
	f.expectReady(metav1.ConditionFalse, providers.ReasonInvalidCredentials, "not retrying until")
	f.expectCondition(tokensv1alpha1.ConditionStalled, true)
	if result.RequeueAfter != 0 {
		t.Fatalf("a permanent failure requeued after %s", result.RequeueAfter)
	}
	// However often it is reconciled (resyncs, restarts), the same inputs are not sent again.
	for range 3 {
		f.clock.Step(time.Hour)
		f.reconcile()
	}
	f.expectCalls(1)

	must(t, f.client.Update(context.Background(), credentialsSecret("fixture-password-rotated")))
	f.reconcile()
	f.expectCalls(2)
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
	f.expectCondition(tokensv1alpha1.ConditionStalled, false)
}

func TestReconcileNeverResendsARefreshTokenWhoseCallMayHaveReachedTheBank(t *testing.T) {
	f := newFixture(t)
	f.renewAnswering(bankError(providers.ClassTransient, providers.ReasonTimeout))
	if f.refreshToken() != "" {
		t.Fatal("a refresh token whose fate is unknown was kept")
	}
	f.clock.Step(time.Minute)
	f.reconcile()
	f.expectLastCall(3, providers.GrantPassword, "the refresh token was sent again")
}

func TestReconcileKeepsARefreshTokenThatNeverReachedTheBank(t *testing.T) {
	f := newFixture(t)
	refused := bankError(providers.ClassTransient, providers.ReasonEndpointUnreachable)
	refused.NotSent = true
	f.renewAnswering(refused)
	f.clock.Step(time.Minute)
	f.reconcile()
	f.expectCalls(3)
	if f.bank.calls[2].RefreshToken.Reveal() != "fixture-refresh-1" {
		t.Fatal("a refresh token the bank never saw was dropped")
	}
}

func TestReconcileMakesNoCallWhileSuspended(t *testing.T) {
	f := newFixture(t, func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Suspend = true })
	result := f.reconcile()
	f.expectCalls(0)
	f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonSuspended)
	if result.RequeueAfter != 0 || f.resource().Status.RenewalTime != nil {
		t.Fatal("a suspended resource plans a renewal")
	}
	f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Suspend = false })
	f.reconcile()
	f.expectCalls(1)
}

func TestReconcileReportsAMissingCredentialsSecretAndIssuesWhenItAppears(t *testing.T) {
	f := newFixture(t, func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.CredentialsSecretRef.Name = "later" })
	f.reconcile()
	f.expectCalls(0)
	f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonCredentialsSecretNotFound, "payments/later")
	f.expectCondition(tokensv1alpha1.ConditionStalled, true)
	later := credentialsSecret("fixture-password")
	later.Name = "later"
	must(t, f.client.Create(context.Background(), later))
	f.reconcile()
	f.expectCalls(1)
	f.expectCondition(tokensv1alpha1.ConditionStalled, false)
}

func TestReconcileActsOnARefreshRequestOnce(t *testing.T) {
	f := newFixture(t)
	f.issue()
	f.update(func(b *tokensv1alpha1.BankTokenRequest) {
		b.Annotations = map[string]string{tokensv1alpha1.RefreshRequestedAtAnnotation: "2026-11-30T09:05:00Z"}
	})
	f.reconcile()
	f.reconcile()
	f.expectCalls(2)
	if got := f.resource().Status.LastRefreshRequestedAt; got != "2026-11-30T09:05:00Z" {
		t.Fatalf("lastRefreshRequestedAt = %q", got)
	}
}

func TestReconcileReplacesAnAlteredOutputSecretAndAppliesTemplatesWithoutACall(t *testing.T) {
	f := newFixture(t)
	f.issue()
	altered := f.secret("paymob")
	altered.Data["access_token"] = []byte("edited")
	must(t, f.client.Update(context.Background(), altered))
	f.reconcile()
	f.expectCalls(2)
	if f.accessToken() != "fixture-access-2" {
		t.Fatal("the altered Secret was not put back")
	}

	f.update(func(b *tokensv1alpha1.BankTokenRequest) {
		b.Spec.SecretTemplate = &tokensv1alpha1.SecretTemplate{Labels: map[string]tokensv1alpha1.LabelValue{"team": "payments"}}
	})
	f.reconcile()
	f.expectCalls(2)
	if f.secret("paymob").Labels["team"] != "payments" || f.secret("paymob").Labels[tokensv1alpha1.SecretRoleLabel] != tokensv1alpha1.SecretRoleToken {
		t.Fatal("the template's label was not applied under the operator's")
	}
}

// A token the apiserver will not store is a failed attempt: retrying at the queue's pace
// would call the bank (and rotate its refresh token) every few seconds.
func TestReconcileKeepsTheHeldTokenAndBacksOffWhenStoringTheNewOneFails(t *testing.T) {
	f := newFixture(t)
	f.issue()
	token := f.accessToken()
	f.stepToRenewal()
	f.failSecretWrites("paymob", apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "paymob", errors.New("RBAC")))
	f.reconcile()
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonRefreshFailing, "token valid until", "storing it failed")
	if f.accessToken() != token {
		t.Fatal("the held token was lost")
	}
	calls := len(f.bank.calls)
	f.clock.Step(time.Second)
	f.reconcile()
	f.expectCalls(calls)
	status := f.resource().Status
	if status.FailedAttempts != 1 || status.RenewalTime == nil || !status.RenewalTime.After(f.clock.Now()) {
		t.Fatalf("the failed store was not counted and backed off: %d attempts, next at %v", status.FailedAttempts, status.RenewalTime)
	}
}

// One the apiserver refuses as invalid will be refused again: no call until something changes.
func TestReconcileMakesNoFurtherCallWhenTheApiserverRefusesTheTokenAsInvalid(t *testing.T) {
	f := newFixture(t)
	f.issue()
	token := f.accessToken()
	f.stepToRenewal()
	f.failSecretWrites("paymob", apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, "paymob", nil))
	f.reconcile()
	calls := len(f.bank.calls)
	f.expectCondition(tokensv1alpha1.ConditionStalled, true)
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonRefreshFailing, tokensv1alpha1.ReasonOutputSecretRejected)
	for range 5 {
		f.clock.Step(10 * time.Minute)
		f.reconcile()
	}
	f.expectCalls(calls)
	if f.accessToken() != token {
		t.Fatal("the held token was lost")
	}
	// A spec change is tried again (the template is not part of what is sent to the bank).
	f.failWrites = nil
	f.update(func(b *tokensv1alpha1.BankTokenRequest) {
		b.Spec.SecretTemplate = &tokensv1alpha1.SecretTemplate{Labels: map[string]tokensv1alpha1.LabelValue{"team": "payments"}}
	})
	f.reconcile()
	f.expectCalls(calls + 1)
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
}

func TestReconcileNeverSendsTheSameRefreshTokenTwiceWhenStoringItsReplacementFails(t *testing.T) {
	f := newFixture(t)
	f.issue()
	f.stepToRenewal()
	f.failWrites = func(obj client.Object) error {
		if s, ok := obj.(*corev1.Secret); ok && string(s.Data[refreshTokenKey]) == "fixture-refresh-2" {
			return apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, obj.GetName(), errors.New("changed"))
		}
		return nil
	}
	f.reconcile()
	f.expectCalls(2)
	f.failWrites = nil
	f.clock.Step(backoffCap)
	f.reconcile()
	f.expectLastCall(3, providers.GrantPassword, "the spent refresh token was sent again")
}

// A process that stops between sending a refresh token and writing the answer leaves the
// in-flight mark behind; its successor, with no memory of the call, must not send it again.
func TestReconcileTreatsARefreshTokenMarkedInFlightAsSpentAfterARestart(t *testing.T) {
	f := newFixture(t)
	f.bank.rotate = false
	f.issue()
	f.stepToRenewal()
	f.failSecretWrites("paymob", errors.New("the process was killed before this write"))
	f.reconcile()
	f.expectLastCall(2, providers.GrantRefreshToken, "the renewal did not send the refresh token")
	if f.secret(refreshSecretName(f.resource())).Annotations[annotationRefreshInFlight] == "" {
		t.Fatal("no in-flight mark was written before the refresh token was sent")
	}

	f.failWrites = nil
	f.r = f.newReconciler()
	f.clock.Step(backoffCap) // the failed store backs off like a failed call
	f.reconcile()
	f.expectLastCall(3, providers.GrantPassword, "a restarted operator sent a refresh token whose call may have reached the bank")
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
	if f.secret(refreshSecretName(f.resource())).Annotations[annotationRefreshInFlight] != "" {
		t.Fatal("the in-flight mark outlived the primary grant")
	}

	// An answered refresh resolves its mark: the next renewal refreshes again.
	f.stepToRenewal()
	f.reconcile()
	f.stepToRenewal()
	f.reconcile()
	if f.bank.lastGrant() != providers.GrantRefreshToken {
		t.Fatal("a refresh whose answer was written left its token unusable")
	}
}

// A refresh token belongs to the inputs it was issued under: after the credentials or the
// endpoint change, it is dropped unsent and the primary grant proves the new inputs at once.
func TestReconcileDropsARefreshTokenWhenItsInputsChange(t *testing.T) {
	for name, change := range map[string]func(f *fixture){
		"rotated password": func(f *fixture) {
			must(f.t, f.client.Update(context.Background(), credentialsSecret("fixture-password-rotated")))
		},
		"new endpoint": func(f *fixture) {
			f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Endpoint = "https://other-bank.example/o/token/" })
		},
		"new scope": func(f *fixture) {
			f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Scope = "read write" })
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.issue()
			change(f)
			f.bank.failWith(bankError(providers.ClassPermanent, providers.ReasonInvalidCredentials))
			f.reconcile()
			f.expectCalls(2)
			if f.bank.lastGrant() != providers.GrantPassword {
				t.Fatal("the refresh token was sent under inputs it was not issued under")
			}
			// The failed login is reported now, and the still-valid token is kept.
			f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonRefreshFailing, "InvalidCredentials")
			f.expectCondition(tokensv1alpha1.ConditionStalled, true)
			if f.accessToken() != "fixture-access-1" || f.refreshToken() != "" {
				t.Fatal("the valid token was lost, or the refresh token of the old inputs kept")
			}
			if !slices.Contains(f.events(), eventRefreshFailed) {
				t.Fatal("no Warning event for the failed login")
			}
		})
	}
}

// A manager that is stopping cancels the reconcile's context; a renewal under way still
// finishes, so that the bank's answer is written and no refresh token is spent for nothing.
func TestReconcileFinishesARenewalWhenTheManagerStops(t *testing.T) {
	f := newFixture(t)
	f.issue()
	f.stepToRenewal()
	stopping, stop := context.WithCancel(context.Background())
	stop()
	if _, err := f.r.Reconcile(stopping, ctrl.Request{NamespacedName: f.key}); err != nil {
		t.Fatal(err)
	}
	if f.bank.cancelled != 0 || f.accessToken() != "fixture-access-2" || f.refreshToken() != "fixture-refresh-2" {
		t.Fatalf("the renewal was cut short (%d cancelled calls)", f.bank.cancelled)
	}
}

func TestOwnWritesRecognisesEveryRecentWriteOfASecret(t *testing.T) {
	var own ownWrites
	secret := &corev1.Secret{}
	secret.Namespace, secret.Name = "payments", "paymob-refresh-token"
	for _, version := range []string{"10", "11"} {
		secret.ResourceVersion = version
		own.record(secret)
	}
	for version, want := range map[string]bool{"10": true, "11": true, "12": false} {
		secret.ResourceVersion = version
		if own.isOwn(secret) != want {
			t.Errorf("version %s: own = %v, want %v", version, !want, want)
		}
	}
	// While a write is under way its event may come before its answer: any version is taken
	// as the write's own until it is over.
	end := own.begin(client.ObjectKeyFromObject(secret))
	secret.ResourceVersion = "13"
	if !own.isOwn(secret) {
		t.Error("an event during a write was taken for someone else's change")
	}
	end()
	if own.isOwn(secret) {
		t.Error("an unknown version after the write was taken for the reconciler's own")
	}
}

// A refresh the bank refused in any shape is followed at once by the primary grant; only the
// primary grant's answer decides Ready and Stalled.
func TestReconcileFallsBackAtOnceWhenARefreshIsRefusedInAnyShape(t *testing.T) {
	for name, refusal := range map[string]*providers.Error{
		"a gateway's 401":        {Class: providers.ClassPermanent, Reason: providers.ReasonInvalidCredentials, StatusCode: 401},
		"a proxy's HTML 400":     {Class: providers.ClassTransient, Reason: providers.ReasonInvalidResponse, StatusCode: 400},
		"a 500":                  {Class: providers.ClassTransient, Reason: providers.ReasonServerError, StatusCode: 500},
		"an unreadable 200":      {Class: providers.ClassTransient, Reason: providers.ReasonInvalidResponse, StatusCode: 200},
		"invalid_grant, 400":     {Class: providers.ClassRefreshTokenRejected, Reason: providers.ReasonRefreshTokenRejected, StatusCode: 400},
		"unsupported_grant_type": {Class: providers.ClassPermanent, Reason: providers.ReasonUnsupportedGrantType, StatusCode: 400},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			refusal.Message = "refused"
			f.renewAnswering(refusal)
			f.expectLastCall(3, providers.GrantPassword, "no primary grant in the same reconcile")
			f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
			f.expectCondition(tokensv1alpha1.ConditionStalled, false)
			if f.resource().Status.FailedAttempts != 0 {
				t.Fatal("a refused refresh followed by a good primary grant counted as a failure")
			}
		})
	}
}

func TestReconcileStoresNoRefreshTokenForAProviderThatCannotUseIt(t *testing.T) {
	f := newFixture(t, func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Provider = tokensv1alpha1.ProviderRAKBankPartner })
	f.issue()
	if f.refreshToken() != "" {
		t.Fatal("a refresh token was stored for an endpoint without the refresh_token grant")
	}
	f.stepToRenewal()
	f.reconcile()
	f.expectLastCall(2, providers.GrantPassword, "a renewal of the partner endpoint did not use its primary grant")
}

// The reconcile that follows the operator's own writes may read the resource from a cache
// that has not seen the status just written: it must not act on the same request again.
func TestReconcileOfAStaleCachedResourceMakesNoSecondCall(t *testing.T) {
	f := newFixture(t)
	f.issue()
	f.update(func(b *tokensv1alpha1.BankTokenRequest) {
		b.Annotations = map[string]string{tokensv1alpha1.RefreshRequestedAtAnnotation: "2026-11-30T09:05:00Z"}
	})
	cached := f.resource()
	f.reconcile()
	f.expectCalls(2)

	f.staleResource = cached
	if result := f.reconcile(); result.RequeueAfter != cacheCatchUpDelay {
		t.Fatalf("requeue after %s, want a wait of %s for the cache", result.RequeueAfter, cacheCatchUpDelay)
	}
	f.expectCalls(2)

	// A restarted reconciler has no memory of its writes: the stale status still asks for
	// the refresh, but the output Secret, read fresh, shows the token it already produced.
	f.r = f.newReconciler()
	f.reconcile()
	f.expectCalls(2)
}

// At a bank whose refresh revokes the access token issued with the refresh token it spends
// (Paymob's Django OAuth Toolkit), the chain whose token is published is never refreshed:
// a workload that reads the output Secret late keeps a working token, renewal after renewal,
// and the bank never holds more than two live grants.
func TestReconcileNeverRevokesTheTokenAWorkloadMayStillHold(t *testing.T) {
	f := newFixture(t, func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Provider = tokensv1alpha1.ProviderPaymob })
	f.bank.revokeOnRefresh = true
	f.issue()
	grants := []providers.GrantType{}
	for renewal := range 6 {
		replaced := f.accessToken()
		f.stepToRenewal()
		f.reconcile()
		grants = append(grants, f.bank.lastGrant())
		if !f.bank.accepts(replaced) {
			t.Fatalf("renewal %d revoked the token it replaced, which workloads may still hold", renewal+1)
		}
		if live := f.bank.liveGrants(); live > 2 {
			t.Fatalf("after renewal %d the bank holds %d live grants", renewal+1, live)
		}
		f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
	}
	want := []providers.GrantType{providers.GrantPassword, providers.GrantRefreshToken, providers.GrantRefreshToken,
		providers.GrantRefreshToken, providers.GrantRefreshToken, providers.GrantRefreshToken}
	if !slices.Equal(grants, want) {
		t.Fatalf("grants %v, want a second chain once, then refreshes of the standby chain %v", grants, want)
	}
}

// A forced refresh right after a renewal cannot refresh the standby chain yet: its access
// token was superseded too recently. The primary grant is used instead.
func TestReconcileUsesThePrimaryGrantWhenTheStandbyChainIsTooFresh(t *testing.T) {
	f := newFixture(t, func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Provider = tokensv1alpha1.ProviderPaymob })
	f.bank.revokeOnRefresh = true
	f.issue()
	f.stepToRenewal()
	f.reconcile() // a second chain: the first becomes standby now
	replaced := f.accessToken()
	f.clock.Step(time.Minute)
	f.update(func(b *tokensv1alpha1.BankTokenRequest) {
		b.Annotations = map[string]string{tokensv1alpha1.RefreshRequestedAtAnnotation: "now"}
	})
	f.reconcile()
	f.expectLastCall(3, providers.GrantPassword, "a standby chain superseded a minute ago was refreshed")
	if !f.bank.accepts(replaced) {
		t.Fatal("the forced refresh revoked a token workloads may still hold")
	}
}

// A Secret of the output's name that something else owns is never overwritten: the
// resource stalls with SecretConflict and calls no bank, and the Secret stays as it was.
func TestReconcileNeverOverwritesASecretItDoesNotOwn(t *testing.T) {
	f := newFixture(t)
	theirs := &corev1.Secret{Type: corev1.SecretTypeServiceAccountToken}
	theirs.Namespace, theirs.Name = "payments", "paymob"
	theirs.Annotations = map[string]string{corev1.ServiceAccountNameKey: "builder"}
	theirs.Data = map[string][]byte{"token": []byte("fixture-not-a-service-account-token")}
	must(t, f.client.Create(context.Background(), theirs))
	before := f.secret("paymob")
	f.reconcile()
	f.reconcile()
	f.expectCalls(0)
	f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonSecretConflict, "payments/paymob", "not owned")
	f.expectCondition(tokensv1alpha1.ConditionStalled, true)
	if got := f.secret("paymob"); !equality.Semantic.DeepEqual(got, before) {
		t.Fatalf("a Secret the operator does not own was changed:\nbefore %+v\nafter  %+v", before, got)
	}
}

// A conflict on a Secret write (someone labelled it since it was read) is retried with a
// fresh read in the same reconcile: the bank's answer is not thrown away.
func TestReconcileRetriesAConflictingSecretWriteWithAFreshRead(t *testing.T) {
	f := newFixture(t)
	f.issue()
	f.stepToRenewal()
	conflicts := 0
	f.failWrites = func(obj client.Object) error {
		if _, ok := obj.(*corev1.Secret); ok && obj.GetName() == "paymob" && conflicts == 0 {
			conflicts++
			return apierrors.NewConflict(schema.GroupResource{Resource: "secrets"}, obj.GetName(), errors.New("changed"))
		}
		return nil
	}
	f.reconcile()
	f.expectCalls(2)
	if conflicts != 1 || f.accessToken() != "fixture-access-2" {
		t.Fatalf("after %d conflicts the Secret holds %q, want the new token", conflicts, f.accessToken())
	}
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
}

// An error that is not the providers client's own (another fetcher's) must count as a call
// the bank may have processed: a refresh token sent in it is spent.
func TestAnUnclassifiedFetchErrorCountsAsPossiblyProcessed(t *testing.T) {
	if failure := asFailure(errors.New("an error from elsewhere")); !failure.MayHaveBeenProcessed() || failure.Class != providers.ClassTransient {
		t.Fatalf("an unclassified error became %s, processed %v", failure.Class, failure.MayHaveBeenProcessed())
	}
}
