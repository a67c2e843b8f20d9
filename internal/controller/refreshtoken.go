package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"strconv"
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
//   - a failed call that may have reached the bank spends it, in memory and by clearing it.
const (
	// annotationRefreshInFlight on the refresh-token Secret: the mark of a refresh call sent
	// (a fingerprint of the token and the time of sending; never the token).
	annotationRefreshInFlight = "tokens.banktoken.io/refresh-in-flight"
	// annotationRefreshCompleted on the output Secret: the mark of the last refresh call
	// whose answer was written.
	annotationRefreshCompleted = "tokens.banktoken.io/refresh-completed"
)

// usableRefreshToken returns the refresh token that may be sent for the gathered inputs,
// or none and why not ("" when none is held).
func (r *BankTokenRequestReconciler) usableRefreshToken(g *gathered) (providers.Secret, string) {
	rt := g.RefreshToken
	if rt.IsZero() {
		return "", ""
	}
	annotations := g.RefreshSecret.Annotations
	boundTo := annotations[annotationInputHash]
	if boundTo == "" && g.Held != nil {
		// Stored before bindings were written: it came with the held token.
		boundTo = g.Held.RequestHash
	}
	switch inFlight := annotations[annotationRefreshInFlight]; {
	case !refreshable(&g.Request.Spec):
		return "", "the provider's token endpoint takes no refresh_token grant"
	case r.spent.contains(rt):
		return "", "it was spent by an earlier call"
	case inFlight != "" && (g.OutputSecret == nil || g.OutputSecret.Annotations[annotationRefreshCompleted] != inFlight):
		return "", "a call with it was sent and its answer never written (the operator stopped or lost a write)"
	case boundTo != g.RequestHash:
		return "", "the inputs changed since it was issued (endpoint, scope, credentials or another request field)"
	}
	return rt, ""
}

// refreshMark identifies one refresh call: a fingerprint of the token, never the token.
func refreshMark(rt providers.Secret, sentAt time.Time) string {
	sum := sha256.Sum256([]byte(rt.Reveal()))
	return hex.EncodeToString(sum[:8]) + "@" + strconv.FormatInt(sentAt.UnixNano(), 36)
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

// store writes next down, bound to the inputs it was issued under, with no call in flight;
// an empty next clears a dead one, and so does a provider that cannot use one. Labels and annotations others put on the Secret stay.
func (r *BankTokenRequestReconciler) store(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, s *refreshTokenSecret, next providers.Secret, requestHash string) error {
	if s.current == nil && (next.IsZero() || !refreshable(&btr.Spec)) {
		return nil
	}
	annotations := map[string]string{}
	if s.current != nil {
		maps.Copy(annotations, s.current.Annotations)
	}
	delete(annotations, annotationRefreshInFlight)
	delete(annotations, annotationInputHash)
	data := map[string][]byte{}
	if !next.IsZero() && refreshable(&btr.Spec) {
		data[refreshTokenKey] = []byte(next.Reveal())
		annotations[annotationInputHash] = requestHash
	}
	return r.writeRefreshSecret(ctx, btr, s, data, annotations)
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
