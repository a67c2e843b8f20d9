package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

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
const (
	// standbyRefreshTokenKey holds the standby chain's refresh token.
	standbyRefreshTokenKey = "standby_refresh_token"
	// annotationStandbySince on the refresh-token Secret: when the standby chain's access
	// token was superseded in the output Secret.
	annotationStandbySince = "tokens.banktoken.io/standby-since"
	// annotationRefreshInFlight on the refresh-token Secret: the mark of a refresh call sent
	// (a fingerprint of the token and the time of sending; never the token).
	annotationRefreshInFlight = "tokens.banktoken.io/refresh-in-flight"
	// annotationRefreshCompleted on the output Secret: the mark of the last refresh call
	// whose answer was written.
	annotationRefreshCompleted = "tokens.banktoken.io/refresh-completed"
)

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
	if !revokesOnRefresh(&g.Request.Spec) {
		if g.RefreshToken.IsZero() {
			return "", ""
		}
		if why := r.chainUnusable(g, g.RefreshToken); why != "" {
			return "", why
		}
		return g.RefreshToken, ""
	}
	if g.StandbyRefreshToken.IsZero() {
		return "", ""
	}
	if why := r.chainUnusable(g, g.StandbyRefreshToken); why != "" {
		return "", why
	}
	since, err := time.Parse(time.RFC3339, g.RefreshSecret.Annotations[annotationStandbySince])
	if err != nil || now.Before(since.Add(r.SecretPropagationDelay)) {
		// Refreshing it would revoke an access token workloads may still hold.
		return "", "the standby chain's access token was superseded less than the secret propagation delay ago"
	}
	return g.StandbyRefreshToken, ""
}

// chainUnusable says why a stored refresh token must not be sent or kept, "" if it may.
func (r *BankTokenRequestReconciler) chainUnusable(g *gathered, rt providers.Secret) string {
	if rt.IsZero() {
		return "none is held"
	}
	annotations := g.RefreshSecret.Annotations
	boundTo := annotations[annotationInputHash]
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
	if g.RefreshSecret == nil {
		return false
	}
	inFlight := g.RefreshSecret.Annotations[annotationRefreshInFlight]
	return strings.HasPrefix(inFlight, fingerprint(rt)+"@") &&
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
	if revokesOnRefresh(&g.Request.Spec) && g.RefreshToken != sent && r.chainUnusable(g, g.RefreshToken) == "" {
		// The access token just superseded stays valid while workloads catch up.
		next.standby = g.RefreshToken
	}
	return next
}

// chainsKept are the refresh tokens still good after a failed call: the sent one goes when
// it is spent, and any that must not be used go too.
func (r *BankTokenRequestReconciler) chainsKept(g *gathered) refreshChains {
	var kept refreshChains
	if r.chainUnusable(g, g.RefreshToken) == "" {
		kept.active = g.RefreshToken
	}
	if revokesOnRefresh(&g.Request.Spec) && r.chainUnusable(g, g.StandbyRefreshToken) == "" {
		kept.standby = g.StandbyRefreshToken
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

// refreshTokenSecret is the refresh-token Secret as this reconcile last wrote or read it.
type refreshTokenSecret struct {
	current *corev1.Secret
}

// markInFlight writes down, before the token is sent, that a call with it is about to be.
func (r *BankTokenRequestReconciler) markInFlight(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, s *refreshTokenSecret, mark string) error {
	annotations := maps.Clone(s.current.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[annotationRefreshInFlight] = mark
	return r.writeRefreshSecret(ctx, btr, s, s.current.Data, annotations)
}

// store writes the chains down, bound to the inputs they were issued under, with no call
// in flight, and the grants waiting to be revoked; nothing to keep clears the Secret, and a
// provider that cannot use refresh tokens keeps none. Labels and annotations others put on
// the Secret stay.
func (r *BankTokenRequestReconciler) store(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, s *refreshTokenSecret, next refreshChains, revocations []pendingRevocation, requestHash string, now time.Time) error {
	if !refreshable(&btr.Spec) {
		next = refreshChains{}
	}
	holdsChains := !next.active.IsZero() || !next.standby.IsZero()
	if s.current == nil && !holdsChains && len(revocations) == 0 {
		return nil
	}
	annotations := map[string]string{}
	if s.current != nil {
		maps.Copy(annotations, s.current.Annotations)
	}
	for _, k := range []string{annotationRefreshInFlight, annotationInputHash, annotationStandbySince, annotationRevocationEndpoint} {
		delete(annotations, k)
	}
	data := map[string][]byte{}
	if holdsChains {
		annotations[annotationInputHash] = requestHash
		if endpoint := revocationEndpoint(&btr.Spec); endpoint != "" {
			annotations[annotationRevocationEndpoint] = endpoint
		}
	}
	if !next.active.IsZero() {
		data[refreshTokenKey] = []byte(next.active.Reveal())
	}
	if !next.standby.IsZero() {
		data[standbyRefreshTokenKey] = []byte(next.standby.Reveal())
		annotations[annotationStandbySince] = standbySince(s.current, next.standby, now)
	}
	if len(revocations) > 0 {
		data[revocationsKey] = encodeRevocations(revocations)
	}
	if annotations[annotationRevocationEndpoint] != "" || len(revocations) > 0 {
		if err := r.ensureFinalizer(ctx, btr); err != nil {
			return err
		}
	}
	return r.writeRefreshSecret(ctx, btr, s, data, annotations)
}

// standbySince keeps the time a standby chain was superseded while it stays standby.
func standbySince(current *corev1.Secret, standby providers.Secret, now time.Time) string {
	if current != nil && string(current.Data[standbyRefreshTokenKey]) == standby.Reveal() {
		if since := current.Annotations[annotationStandbySince]; since != "" {
			return since
		}
	}
	return formatTime(now)
}

func (r *BankTokenRequestReconciler) writeRefreshSecret(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, s *refreshTokenSecret, data map[string][]byte, annotations map[string]string) error {
	want := ownedSecret{existing: s.current, name: refreshSecretName(btr), role: roleRefreshToken,
		annotations: annotations, data: data}
	if s.current != nil {
		want.labels = s.current.Labels
	}
	written, err := r.writeOwnedSecret(ctx, btr, want)
	if err != nil {
		return err
	}
	s.current = written
	return nil
}
