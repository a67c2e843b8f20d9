package controller

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/tokencalls"
)

const fixtureRevocationEndpoint = "https://paymob.example/o/revoke_token/"

// withRevocationEndpoint gives the fixture's OAuth2 endpoint an RFC 7009 endpoint.
func withRevocationEndpoint(b *tokensv1alpha1.BankTokenRequest) {
	b.Spec.RevocationEndpoint = fixtureRevocationEndpoint
}

// A grant the operator stops using (its inputs changed, so the primary grant replaced it)
// is revoked at the bank, but only once workloads may have read the token that replaced
// the one issued with it: revoking it revokes that access token too.
func TestReconcileRevokesAGrantItStopsUsingOnceWorkloadsHaveMovedOn(t *testing.T) {
	f := newFixture(t, withRevocationEndpoint)
	f.issue()
	if !controllerutil.ContainsFinalizer(f.resource(), finalizerRevokeGrants) {
		t.Fatal("no finalizer on a resource whose grants can be revoked")
	}
	oldGrant, oldToken := f.refreshToken(), f.accessToken()
	f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Scope = "read write" })
	result := f.reconcile()
	f.expectLastCall(2, providers.GrantPassword, "the refresh token was sent under other inputs")
	if len(f.bank.revocations) != 0 || !f.bank.accepts(oldToken) {
		t.Fatal("the replaced grant was revoked before workloads could read the new token")
	}
	if result.RequeueAfter != f.r.SecretPropagationDelay {
		t.Fatalf("requeue after %v; want the revocation's time, %v", result.RequeueAfter, f.r.SecretPropagationDelay)
	}
	f.clock.Step(f.r.SecretPropagationDelay - time.Second)
	f.reconcile()
	if len(f.bank.revocations) != 0 {
		t.Fatal("the replaced grant was revoked within the propagation delay")
	}

	f.clock.Step(time.Second)
	f.reconcile()
	if want := []string{fixtureRevocationEndpoint + " " + oldGrant}; !slices.Equal(f.bank.revocations, want) {
		t.Fatalf("%d revocations, not the replaced grant at the endpoint it was issued under", len(f.bank.revocations))
	}
	if live := f.bank.liveGrants(); live != 1 {
		t.Fatalf("the bank holds %d live grants, want 1", live)
	}
	f.expectCalls(2)
	if !slices.Contains(f.events(), eventGrantsRevoked) {
		t.Fatal("no event for the revocation")
	}
	f.reconcile()
	if len(f.bank.revocations) != 1 {
		t.Fatal("a revoked grant was revoked again")
	}
}

// Without a revocation endpoint there is nothing to revoke with: no finalizer, no extra write.
func TestReconcileHoldsNoFinalizerWhereGrantsCannotBeRevoked(t *testing.T) {
	f := newFixture(t)
	f.issue()
	if controllerutil.ContainsFinalizer(f.resource(), finalizerRevokeGrants) || slices.Contains(f.writes, "patch") {
		t.Fatalf("finalizer written without a revocation endpoint (writes %v)", f.writes)
	}
}

// A revocation that fails for a while is retried later; one the bank refuses for good is
// given up with a Warning event. Neither disturbs the token held.
func TestReconcileRetriesAFailedRevocationAndReportsOneGivenUp(t *testing.T) {
	f := revocationDue(t)
	f.bank.revocationFailures = []error{
		bankError(providers.ClassTransient, providers.ReasonServerError),
		bankError(providers.ClassPermanent, providers.ReasonInvalidCredentials),
	}
	result := f.reconcile()
	if len(f.bank.revocations) != 1 || result.RequeueAfter > revocationRetryDelay {
		t.Fatalf("after a transient failure: %d revocations, requeue after %v", len(f.bank.revocations), result.RequeueAfter)
	}
	f.clock.Step(revocationRetryDelay)
	f.reconcile()
	if len(f.bank.revocations) != 2 || !slices.Contains(f.events(), eventGrantsLeftLive) {
		t.Fatal("a permanently refused revocation was not given up with a Warning event")
	}
	if len(decodeRefreshState(f.secret(refreshSecretName(f.resource()))).Revocations) != 0 {
		t.Fatal("a grant given up is still queued")
	}
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
}

// A forced refresh soon after a renewal, at a bank whose refresh revokes the access
// token, uses the primary grant; the standby grant it drops has an access token that
// workloads may still hold, so it is revoked only once its own propagation delay is over.
func TestReconcileRevokesADroppedStandbyGrantOnlyAfterItsDelay(t *testing.T) {
	f := newFixture(t, withRevocationEndpoint, func(b *tokensv1alpha1.BankTokenRequest) {
		b.Spec.RefreshRevokesAccessToken = new(true)
	})
	f.bank.revokeOnRefresh = true
	f.issue()
	firstToken := f.accessToken()
	f.stepToRenewal()
	f.reconcile() // a second chain: the first becomes standby now
	f.clock.Step(time.Minute)
	f.update(func(b *tokensv1alpha1.BankTokenRequest) {
		b.Annotations = map[string]string{tokensv1alpha1.RefreshRequestedAtAnnotation: "now"}
	})
	f.reconcile()
	f.expectLastCall(3, providers.GrantPassword, "a standby chain superseded a minute ago was refreshed")
	if len(f.bank.revocations) != 0 || !f.bank.accepts(firstToken) {
		t.Fatal("the dropped standby grant was revoked while workloads may still hold its token")
	}
	f.clock.Step(f.r.SecretPropagationDelay - time.Minute)
	f.reconcile()
	if len(f.bank.revocations) != 1 || f.bank.liveGrants() != 2 {
		t.Fatalf("after its delay: %d revocations, %d live grants; want the dropped standby revoked, 2 live",
			len(f.bank.revocations), f.bank.liveGrants())
	}
}

// A dropped standby grant stays live at the bank for the whole propagation delay counted
// from when its access token was superseded, however often the resource is reconciled in
// that time: workloads may still send that token. Then it is revoked once, and only once.
func TestReconcileKeepsADroppedStandbyGrantLiveUntilItsDelayIsOver(t *testing.T) {
	f := newFixture(t, withRevocationEndpoint, func(b *tokensv1alpha1.BankTokenRequest) {
		b.Spec.RefreshRevokesAccessToken = new(true)
	})
	f.bank.revokeOnRefresh = true
	f.issue()
	standbyGrant, standbyToken := f.refreshToken(), f.accessToken()
	f.stepToRenewal()
	superseded := f.clock.Now()
	f.reconcile() // a second chain: the first becomes standby, its token superseded now
	f.clock.Step(10 * time.Second)
	f.update(func(b *tokensv1alpha1.BankTokenRequest) {
		b.Annotations = map[string]string{tokensv1alpha1.RefreshRequestedAtAnnotation: "now"}
	})
	f.reconcile()
	f.expectLastCall(3, providers.GrantPassword, "the standby chain was refreshed within its delay instead of dropped")

	delay := f.r.SecretPropagationDelay
	for _, at := range []time.Duration{delay / 2, delay - time.Second} {
		f.clock.SetTime(superseded.Add(at))
		f.reconcile()
		if len(f.bank.revocations) != 0 || !f.bank.accepts(standbyToken) {
			t.Fatalf("%v after its token was superseded (delay %v): %d revocations; want the standby grant still live",
				at, delay, len(f.bank.revocations))
		}
	}

	f.clock.SetTime(superseded.Add(delay))
	for _, when := range []string{"once its delay is over", "a delay later"} {
		f.reconcile()
		if want := []string{fixtureRevocationEndpoint + " " + standbyGrant}; !slices.Equal(f.bank.revocations, want) {
			t.Fatalf("%s: %d revocations; want the dropped standby grant revoked exactly once", when, len(f.bank.revocations))
		}
		f.clock.Step(delay)
	}
	f.expectCalls(3)
}

// Deleting a resource revokes every grant it holds before the finalizer goes, within a
// bounded time; a bank that cannot be reached delays nothing further and is reported.
func TestDeletionRevokesEveryGrantThenReleasesTheResource(t *testing.T) {
	for name, bankDown := range map[string]bool{"bank answers": false, "bank down": true} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, withRevocationEndpoint)
			f.issue()
			grant := f.refreshToken()
			if bankDown {
				f.bank.revocationFailures = []error{bankError(providers.ClassTransient, providers.ReasonEndpointUnreachable)}
			}
			must(t, f.client.Delete(context.Background(), f.resource()))
			f.reconcile()
			if want := []string{fixtureRevocationEndpoint + " " + grant}; !slices.Equal(f.bank.revocations, want) {
				t.Fatalf("%d revocations, not the held grant alone", len(f.bank.revocations))
			}
			if d := f.bank.revocationDeadlines[0]; d.IsZero() || time.Until(d) > deletionRevocationBudget {
				t.Fatalf("revocation on deletion not bounded: deadline %v", d)
			}
			err := f.client.Get(context.Background(), f.key, &tokensv1alpha1.BankTokenRequest{})
			if !apierrors.IsNotFound(err) {
				t.Fatalf("the resource was not released: %v", err)
			}
			events := strings.Join(f.events(), " ")
			if bankDown != strings.Contains(events, eventGrantsLeftLive) || bankDown == strings.Contains(events, eventGrantsRevoked) {
				t.Fatalf("events %q do not say what happened to the grant", events)
			}
		})
	}
}

// At Keycloak (Banfico) revoking one offline token ends every session of the client, the
// one in use included: a grant dropped during the resource's life is not revoked there.
func TestReconcileNeverRevokesAGrantWhereRevocationEndsEveryGrant(t *testing.T) {
	f := newFixture(t, func(b *tokensv1alpha1.BankTokenRequest) {
		b.Spec.Provider, b.Spec.GrantType = tokensv1alpha1.ProviderBanfico, ""
		b.Spec.Endpoint = "https://banfico.example/auth/realms/provider/protocol/openid-connect/token"
	})
	f.issue()
	if !controllerutil.ContainsFinalizer(f.resource(), finalizerRevokeGrants) {
		t.Fatal("no finalizer: the grant would not be revoked on deletion")
	}
	f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Scope = "profile" })
	f.reconcile()
	f.clock.Step(f.r.SecretPropagationDelay)
	f.reconcile()
	if len(f.bank.revocations) != 0 {
		t.Fatalf("%d revocations at a bank where revoking ends the grant in use", len(f.bank.revocations))
	}
}

// slotCheckingRevoker records, at each revocation, how many token calls its namespace had
// under way: the revocation's own slot must be one of them.
type slotCheckingRevoker struct {
	GrantRevoker
	calls    *tokencalls.Slots
	underway []int
}

func (s *slotCheckingRevoker) Revoke(ctx context.Context, req providers.Request, endpoint string, rt providers.Secret) error {
	s.underway = append(s.underway, s.calls.Taken("payments"))
	return s.GrantRevoker.Revoke(ctx, req, endpoint, rt)
}

// expectRevocationWaitsForASlot holds the namespace's one slot elsewhere, reconciles, and
// expects no revocation until the slot is released; then one, made while holding its slot.
func expectRevocationWaitsForASlot(t *testing.T, f *fixture) {
	t.Helper()
	f.r.tokenCalls = tokencalls.New(0, 1, 0, nil)
	revoker := &slotCheckingRevoker{GrantRevoker: f.bank, calls: f.r.tokenCalls}
	f.r.Revoker = revoker
	other := types.NamespacedName{Namespace: f.key.Namespace, Name: "hung"}
	otherSlot, free := f.r.tokenCalls.Take(other)
	if !free {
		t.Fatal("no slot for the other resource")
	}
	if result := f.reconcile(); len(f.bank.revocations) != 0 || result.RequeueAfter == 0 {
		t.Fatalf("with the namespace at its cap: %d revocations, requeue after %v", len(f.bank.revocations), result.RequeueAfter)
	}
	otherSlot.Release()
	f.reconcile()
	if len(revoker.underway) != 1 || revoker.underway[0] != 1 {
		t.Fatalf("token calls under way at each revocation: %v, want [1] (its own slot)", revoker.underway)
	}
}

// A revocation calls the bank like a token call, so it holds a slot of its namespace's
// share while it runs, and waits when there is none: a namespace whose revocation endpoint
// hangs cannot take every worker.
func TestRevocationsTakeASlotOfTheNamespaceShare(t *testing.T) {
	f := revocationDue(t)
	expectRevocationWaitsForASlot(t, f)
}

// Deleting takes a slot too: its revocations are bank calls.
func TestDeletionWaitsForASlotOfTheNamespaceShare(t *testing.T) {
	f := newFixture(t, withRevocationEndpoint)
	f.issue()
	must(t, f.client.Delete(context.Background(), f.resource()))
	expectRevocationWaitsForASlot(t, f)
}

// A refresh token spent by a refresh that rotated it is never sent again, not even to
// revoke it: at a bank that revokes on refresh, the two chains alternate and each refresh
// spends the standby chain's token.
func TestRevocationNeverSendsARotatedAwayRefreshToken(t *testing.T) {
	f := newFixture(t, withRevocationEndpoint, func(b *tokensv1alpha1.BankTokenRequest) {
		b.Spec.RefreshRevokesAccessToken = new(true)
	})
	f.bank.revokeOnRefresh = true
	f.issue()
	for range 5 {
		f.stepToRenewal()
		f.reconcile()
		f.clock.Step(f.r.SecretPropagationDelay)
		f.reconcile()
	}
	if f.bank.spentSentAgain != 0 {
		t.Fatalf("%d refresh tokens spent by a refresh were sent again to be revoked", f.bank.spentSentAgain)
	}
}

// revocationDue is a resource whose first grant was dropped by changed inputs and whose
// revocation has come due: the propagation delay after the new token was published.
func revocationDue(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, withRevocationEndpoint)
	f.issue()
	f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Scope = "read write" })
	f.reconcile()
	f.clock.Step(f.r.SecretPropagationDelay)
	return f
}
