package controller

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	logf "sigs.k8s.io/controller-runtime/pkg/log"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Revocation of the grants the operator stops using (RFC 7009). A refresh token is a live
// session at the bank (an offline session at Keycloak lives 30 days): one the operator
// drops without revoking is a session nobody will ever end. So a chain the operator stops
// keeping, and that may still be live, waits in the refresh-token Secret and is revoked at
// the endpoint of the inputs it was issued under, once the access token issued with it may
// no longer be in use (revoking a refresh token revokes its access tokens at Django OAuth
// Toolkit and ends the whole session at Keycloak). When the resource is deleted, a
// finalizer revokes every grant left before the deletion goes on.
const (
	// finalizerRevokeGrants holds a deletion until the resource's grants are revoked.
	finalizerRevokeGrants = "tokens.banktoken.io/revoke-grants"

	// maxPendingRevocations bounds the queue; the oldest is given up (and reported) first.
	maxPendingRevocations = 8
	// maxRevocationAttempts: a revocation that keeps failing is given up and reported.
	maxRevocationAttempts = 5
	// revocationRetryDelay is the first wait after a failed revocation; it doubles.
	revocationRetryDelay = 30 * time.Second
	// deletionRevocationBudget bounds how long a bank that is down can hold a deletion.
	deletionRevocationBudget = 30 * time.Second
)

// GrantRevoker revokes a refresh token at an RFC 7009 endpoint; *providers.Client is the real one.
type GrantRevoker interface {
	Revoke(ctx context.Context, req providers.Request, endpoint string, refreshToken providers.Secret) error
}

// pendingRevocation is a grant the operator stopped using, to be revoked at Endpoint from NotBefore.
type pendingRevocation struct {
	Token     providers.Secret
	Endpoint  string
	NotBefore time.Time
	Attempts  int
}

// revocationEndpoint is where the spec's grants are revoked: the spec's, else the
// provider's default; "" when none is known or the provider issues no refresh token.
func revocationEndpoint(spec *tokensv1alpha1.BankTokenRequestSpec) string {
	if !refreshable(spec) {
		return ""
	}
	return cmp.Or(spec.RevocationEndpoint, providers.DefaultRevocationEndpoint(providers.Name(spec.Provider), spec.Endpoint))
}

// recordedRevocationEndpoint is the revocation endpoint of the inputs the held chains were
// issued under. A Secret written before it was recorded holds chains of the current inputs
// when its binding says so.
func recordedRevocationEndpoint(g *gathered) string {
	if !g.Refresh.exists() {
		return ""
	}
	if recorded := g.Refresh.RevocationEndpoint; recorded != "" {
		return recorded
	}
	if g.Refresh.BoundTo == g.RequestHash {
		return revocationEndpoint(&g.Request.Spec)
	}
	return ""
}

// revocationEndsOthersGrants says why a request's grants are not revoked at a bank whose
// revocation ends every grant of the client: through a connection, other requests share
// that client and would lose theirs. "" when they may be revoked.
func revocationEndsOthersGrants(g *gathered) string {
	preset, ok := presetFor(&g.Request.Spec)
	if g.Connection == nil || !ok || !preset.RevocationEndsEveryGrant {
		return ""
	}
	return fmt.Sprintf("a revocation at %s ends every grant of the client, and the client is %s's, shared with its other requests",
		g.Request.Spec.Provider, g.Connection)
}

// mayBeLive says whether a held refresh token may still be a live grant that the operator
// may send again, to revoke it: one spent or sent in a call whose answer was lost is not
// sent again, even to revoke it.
func (r *BankTokenRequestReconciler) mayBeLive(g *gathered, rt providers.Secret) bool {
	return !rt.IsZero() && !r.spent.contains(rt) && !inFlightUnanswered(g, rt)
}

// revocationsAfter is the queue once next replaces the held chains: what was pending,
// and each held chain next drops that may still be live. published says whether this
// reconcile publishes a new access token; the active chain's access token stays in use
// until workloads have read the new one, or, when none is published, until it expires.
func (r *BankTokenRequestReconciler) revocationsAfter(g *gathered, next refreshChains, published bool, now time.Time) []pendingRevocation {
	pending := slices.Clone(g.Refresh.Revocations)
	endpoint := recordedRevocationEndpoint(g)
	if preset, ok := presetFor(&g.Request.Spec); r.Revoker == nil || (ok && preset.RevocationEndsEveryGrant) {
		// At a bank whose revocation ends every grant of the client, revoking a dropped grant
		// would end the one in use too: dropped grants wait for their expiry there.
		endpoint = ""
	}
	if endpoint == "" {
		return pending // nowhere to revoke a dropped grant: it lives at the bank until it expires
	}
	delay := r.propagationDelay(g.Request)
	activeFrom := now.Add(delay)
	if !published && g.Held != nil && g.Held.ExpiresAt.After(activeFrom) {
		activeFrom = g.Held.ExpiresAt
	}
	standbyFrom := g.Refresh.standbySinceOr(now).Add(delay)
	for _, held := range []struct {
		rt   providers.Secret
		from time.Time
	}{{g.Refresh.Active, activeFrom}, {g.Refresh.Standby, standbyFrom}} {
		if held.rt == next.active || held.rt == next.standby || !r.mayBeLive(g, held.rt) {
			continue
		}
		pending = append(pending, pendingRevocation{Token: held.rt, Endpoint: endpoint, NotBefore: held.from})
	}
	return pending
}

// revocationReport is what revoking did, for events and the requeue.
type revocationReport struct {
	revoked int
	// leftLive counts grants given up on; failures say why, the last one last.
	leftLive int
	failures []string
	// next is when the next pending revocation is due; zero when none is pending.
	next time.Time
}

// lastFailure is why the last grant given up on was.
func (rr revocationReport) lastFailure() string {
	if len(rr.failures) == 0 {
		return ""
	}
	return rr.failures[len(rr.failures)-1]
}

// revokeDue revokes the pending grants whose time has come and writes down what is left.
// Only the queue is rewritten: the chains, their binding and any in-flight mark stay as
// they are.
func (r *BankTokenRequestReconciler) revokeDue(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, now time.Time) (revocationReport, error) {
	var due, left []pendingRevocation
	for _, p := range g.Refresh.Revocations {
		if now.Before(p.NotBefore) {
			left = append(left, p)
		} else {
			due = append(due, p)
		}
	}
	report, retried := r.revokeGrants(ctx, btr, g, due, now, true)
	left = append(left, retried...)
	report.next = earliestDue(left)
	if len(left) == len(g.Refresh.Revocations) && report.revoked == 0 && report.leftLive == 0 {
		return report, nil
	}
	held := g.Refresh
	next := held
	next.Revocations = left
	return report, r.writeRefreshState(ctx, btr, &held, next)
}

// revokeGrants revokes each grant, and is the one loop that does: for revocations due in
// the resource's life and for everything left at its deletion. With retry, a failure that
// may pass is returned to be tried again later, with a growing delay; without, or after
// maxRevocationAttempts, the grant is given up and reported. While the bank pauses the
// request's connection (a 429 to any of its calls, this loop's included), nothing is sent:
// a grant waits for the pause's end, or, without retry, is reported left live.
func (r *BankTokenRequestReconciler) revokeGrants(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, grants []pendingRevocation, now time.Time, retry bool) (revocationReport, []pendingRevocation) {
	var report revocationReport
	var again []pendingRevocation
	for _, p := range grants {
		if pausedUntil := r.connectionPausedUntil(g.Connection, r.Clock.Now()); !pausedUntil.IsZero() {
			if retry {
				p.NotBefore = latest(p.NotBefore, pausedUntil)
				again = append(again, p)
				continue
			}
			report.leftLive++
			report.failures = append(report.failures, "the bank paused calls through "+g.Connection.String()+" until "+formatTime(pausedUntil))
			continue
		}
		req := r.providerRequest(btr, g)
		req.InteractionID = interactionIDFor(&btr.Spec)
		err := r.Revoker.Revoke(ctx, req, p.Endpoint, p.Token)
		if err == nil {
			report.revoked++
			callOutcomeLog(logf.FromContext(ctx), req.InteractionID).Info("revoked a grant the operator no longer uses",
				"interactionID", req.InteractionID)
			continue
		}
		failure := asFailure(err)
		r.pauseOnRateLimit(ctx, g.Connection, failure)
		logf.FromContext(ctx).Info("revoking a grant the operator no longer uses failed", "reason", failure.Reason,
			"class", failure.Class, "attempt", p.Attempts+1, "interactionID", req.InteractionID, "message", failure.Message)
		if retry && !isPermanent(failure) && p.Attempts+1 < maxRevocationAttempts {
			p.Attempts++
			p.NotBefore = now.Add(max(revocationRetryDelay<<(p.Attempts-1), failure.RetryAfter))
			again = append(again, p)
			continue
		}
		report.leftLive++
		report.failures = append(report.failures, withInteractionID(failure.Message, req.InteractionID))
	}
	return report, again
}

// revocationsDue says whether revokeDueGrants would call the bank at now.
func (r *BankTokenRequestReconciler) revocationsDue(g *gathered, now time.Time) bool {
	if r.Revoker == nil {
		return false
	}
	due := earliestDue(g.Refresh.Revocations)
	return !due.IsZero() && !now.Before(due)
}

func earliestDue(pending []pendingRevocation) time.Time {
	var next time.Time
	for _, p := range pending {
		if next.IsZero() || p.NotBefore.Before(next) {
			next = p.NotBefore
		}
	}
	return next
}

// boundedQueue keeps the newest maxPendingRevocations and counts the oldest given up.
func boundedQueue(pending []pendingRevocation) ([]pendingRevocation, int) {
	if over := len(pending) - maxPendingRevocations; over > 0 {
		return pending[over:], over
	}
	return pending, 0
}

// latest is the later of two times.
func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
