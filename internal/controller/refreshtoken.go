package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// The refresh-token protocol. A refresh token is a one-time credential at many banks
// (RFC 9700 §4.14): sent twice, or to a host that did not issue it, it may revoke the
// whole grant or trip a bank's fraud monitoring. So:
//   - it is bound to the inputs it was issued under (annotationInputHash on its Secret) and
//     sent only while they are unchanged; changed inputs are proven by the primary grant;
//   - before it is sent, an in-flight mark is written on its Secret; the output Secret
//     records the mark of the last refresh whose answer was written. A mark not recorded
//     there means a process stopped between sending and writing: the token counts as spent;
//   - a failed call that may have reached the bank spends it, in memory and by clearing it;
//   - at a bank whose refresh revokes the access token issued with the refresh token it
//     spends, two chains are kept: the active one, whose access token is published, is
//     never refreshed; the standby one, whose access token was superseded at least the
//     secret propagation delay ago, is. A workload that reads the output Secret late keeps
//     a working token, and the bank holds at most two live grants.
//
// The Secret's codec is in refreshstate.go.

// annotationRefreshCompleted on the output Secret: the mark of the last refresh call whose
// answer was written.
const annotationRefreshCompleted = "tokens.banktoken.io/refresh-completed"

// refreshChains are the refresh tokens kept for one resource.
type refreshChains struct {
	// active is the chain whose access token is published.
	active providers.Secret
	// standby is, at a bank whose refresh revokes the access token, the previous chain.
	standby providers.Secret
}

// refreshTokenToSend returns the refresh token that may be sent for the gathered inputs
// at now, or none and why not ("" when there is simply none to send).
func (r *BankTokenRequestReconciler) refreshTokenToSend(g *gathered, now time.Time) (providers.Secret, string) {
	held := g.Refresh
	if refreshRefusedTooOften(held, g.RequestHash) {
		return "", fmt.Sprintf("the bank refused the last %d refresh tokens it issued under these inputs; "+
			"renewing with the primary grant until they change", held.Refusals)
	}
	if !revokesOnRefresh(&g.Request.Spec) {
		if held.Active.IsZero() {
			return "", ""
		}
		if why := r.chainUnusable(g, held.Active); why != "" {
			return "", why
		}
		return held.Active, ""
	}
	if held.Standby.IsZero() {
		return "", ""
	}
	if why := r.chainUnusable(g, held.Standby); why != "" {
		return "", why
	}
	if now.Before(held.standbySinceOr(now).Add(r.propagationDelay(g.Request))) {
		// Refreshing it would revoke an access token workloads may still hold.
		return "", "the standby chain's access token was superseded less than the secret propagation delay ago"
	}
	return held.Standby, ""
}

// maxRefreshRefusals is how many refresh tokens in a row the bank may refuse before the
// operator stops sending them: a gateway that answers a client_credentials grant with a
// refresh token and then refuses every refresh (RAKBANK's can) would otherwise cost two
// calls per renewal, one of them a refusal, forever.
const maxRefreshRefusals = 2

// refreshRefusedTooOften: under the inputs the chains are bound to, the bank refused
// maxRefreshRefusals refresh tokens in a row, so renewals use the primary grant only.
func refreshRefusedTooOften(s refreshState, requestHash string) bool {
	return s.Refusals >= maxRefreshRefusals && s.BoundTo == requestHash
}

// chainUnusable says why a stored refresh token must not be sent or kept, "" if it may.
func (r *BankTokenRequestReconciler) chainUnusable(g *gathered, rt providers.Secret) string {
	if rt.IsZero() {
		return "none is held"
	}
	boundTo := g.Refresh.BoundTo
	if boundTo == "" && g.Held != nil {
		// Stored before bindings were written: it came with the held token.
		boundTo = g.Held.RequestHash
	}
	switch {
	case !refreshable(&g.Request.Spec):
		return "the provider's token endpoint takes no refresh_token grant"
	case r.spent.contains(rt):
		return "it was spent by an earlier call"
	case inFlightUnanswered(g, rt):
		return "a call with it was sent and its answer never written (the operator stopped or lost a write)"
	case boundTo != g.RequestHash:
		return "the inputs changed since it was issued (endpoint, scope, credentials or another request field)"
	}
	return ""
}

// inFlightUnanswered: a call with rt was marked in flight and its answer never written.
func inFlightUnanswered(g *gathered, rt providers.Secret) bool {
	inFlight := g.Refresh.InFlight
	return inFlight != "" && strings.HasPrefix(inFlight, fingerprint(rt)+"@") &&
		(g.OutputSecret == nil || g.OutputSecret.Annotations[annotationRefreshCompleted] != inFlight)
}

// chainsAfter says which refresh tokens to keep once a call that sent sent ("" for the
// primary grant) was answered with a token carrying answered ("" when none came).
func (r *BankTokenRequestReconciler) chainsAfter(g *gathered, sent, answered providers.Secret) refreshChains {
	next := refreshChains{active: answered}
	if next.active.IsZero() {
		// RFC 6749 §6: without a new one, the refresh token sent stays valid.
		next.active = sent
	}
	if held := g.Refresh.Active; revokesOnRefresh(&g.Request.Spec) && held != sent && r.chainUnusable(g, held) == "" {
		// The access token just superseded stays valid while workloads catch up.
		next.standby = held
	}
	return next
}

// chainsKept are the refresh tokens still good after a failed call: the sent one goes when
// it is spent, and any that must not be used go too.
func (r *BankTokenRequestReconciler) chainsKept(g *gathered) refreshChains {
	var kept refreshChains
	if r.chainUnusable(g, g.Refresh.Active) == "" {
		kept.active = g.Refresh.Active
	}
	if revokesOnRefresh(&g.Request.Spec) && r.chainUnusable(g, g.Refresh.Standby) == "" {
		kept.standby = g.Refresh.Standby
	}
	return kept
}

// revokesOnRefresh: the provider's refresh revokes the access token of the chain it spends.
func revokesOnRefresh(spec *tokensv1alpha1.BankTokenRequestSpec) bool {
	if spec.Provider == tokensv1alpha1.ProviderOAuth2 && spec.RefreshRevokesAccessToken != nil {
		return *spec.RefreshRevokesAccessToken
	}
	preset, ok := presetFor(spec)
	return ok && preset.RefreshRevokesAccessToken
}

func fingerprint(rt providers.Secret) string {
	sum := sha256.Sum256([]byte(rt.Reveal()))
	return hex.EncodeToString(sum[:8])
}

// refreshMark identifies one refresh call: a fingerprint of the token, never the token.
func refreshMark(rt providers.Secret, sentAt time.Time) string {
	return fingerprint(rt) + "@" + strconv.FormatInt(sentAt.UnixNano(), 36)
}

// markInFlight writes down, before the token is sent, that a call with it is about to be.
func (r *BankTokenRequestReconciler) markInFlight(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, held *refreshState, mark string) error {
	next := *held
	next.InFlight = mark
	return r.writeRefreshState(ctx, btr, held, next)
}

// chainsStored is the state once next replaces the held chains: bound to the inputs they
// were issued under, with no call in flight, and revocations waiting; a provider that
// cannot use refresh tokens keeps none. A pure function of its arguments.
func chainsStored(held refreshState, spec *tokensv1alpha1.BankTokenRequestSpec, next refreshChains, revocations []pendingRevocation, requestHash string, now time.Time) refreshState {
	if !refreshable(spec) {
		next = refreshChains{}
	}
	stored := refreshState{secret: held.secret, Active: next.active, Standby: next.standby, Revocations: revocations}
	if held.BoundTo == requestHash {
		// Refusals count under the same inputs only: new inputs deserve refresh tokens again.
		stored.Refusals = held.Refusals
	}
	if stored.holdsChains() {
		stored.BoundTo = requestHash
		stored.RevocationEndpoint = revocationEndpoint(spec)
	}
	if !next.standby.IsZero() {
		// The time a standby chain was superseded stays while it stays standby.
		stored.StandbySince = now
		if held.Standby == next.standby && !held.StandbySince.IsZero() {
			stored.StandbySince = held.StandbySince
		}
	}
	return stored
}

// writeRefreshState writes next as the refresh-token Secret (nothing, when there was none
// and there is nothing to hold) and makes it what held is. It is the one writer of that
// Secret; labels others put on it stay. A grant that can be revoked is written down only
// once the finalizer that revokes it on deletion is in place.
func (r *BankTokenRequestReconciler) writeRefreshState(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, held *refreshState, next refreshState) error {
	if !next.exists() {
		return nil
	}
	if err := r.ensureFinalizer(ctx, btr, next); err != nil {
		return err
	}
	data, annotations := next.encode()
	want := ownedSecret{existing: held.secret, name: refreshSecretName(btr), role: tokensv1alpha1.SecretRoleRefreshToken,
		annotations: annotations, data: data}
	if held.secret != nil {
		want.labels = held.secret.Labels
	}
	written, err := r.writeOwnedSecret(ctx, btr, want)
	if err != nil {
		return err
	}
	next.secret = written
	*held = next
	return nil
}
