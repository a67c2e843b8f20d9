// Package controller reconciles BankTokenRequests. It knows Kubernetes and no bank's quirks:
// each reconcile gathers the inputs, decides with pure policies whether a token is needed,
// makes at most one token call (plus one fallback when a refresh token is rejected), and
// reports status once.
//
// Watches: BankTokenRequests (spec and annotation changes), the Secrets they own (metadata
// only, selected by label) and the Secrets and ConfigMaps they reference (metadata only,
// through an index, in namespaces that hold requests: see referenceWatch).
// Writes: the output Secret, the refresh-token Secret, status, events.
package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// TokenFetcher makes one token call; *providers.Client is the real one.
type TokenFetcher interface {
	Fetch(ctx context.Context, req providers.Request) (*providers.Token, error)
}

// BankTokenRequestReconciler obtains, stores and refreshes bank tokens.
type BankTokenRequestReconciler struct {
	// Client writes, and reads BankTokenRequests from the cache.
	Client client.Client
	// APIReader reads Secrets and ConfigMaps from the apiserver: their data is never cached.
	APIReader client.Reader
	Fetcher   TokenFetcher
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	Metrics   *Metrics
	// AllowInsecureEndpoints admits http:// endpoints; for tests and local sandboxes only.
	AllowInsecureEndpoints bool
	// DefaultTokenLifetime applies when the bank states no lifetime and the token is no JWT.
	DefaultTokenLifetime time.Duration
	// IssueEvents emits TokenIssued and TokenRefreshed events for routine issues. Off by
	// default: status and metrics record every issue, and an event is a third apiserver
	// write per token. Failures, recoveries and rejected refresh tokens always get one.
	IssueEvents bool

	// ownedSecrets (the manager's cache of owned Secrets' metadata) and references (the
	// watch of referenced objects) are set by SetupWithManager. Together they tell a new
	// resource which Secrets cannot exist yet, sparing it their reads.
	ownedSecrets client.Reader
	references   *referenceWatch

	spent        spentRefreshTokens
	ownWrites    ownWrites
	statusWrites statusWrites
}

// NewReconciler wires a reconciler to the manager's clients and event recorder and to the
// real clock, with fetcher as its way to the banks. Callers set metrics and the policy
// fields; DefaultTokenLifetime starts at an hour, the --default-token-lifetime default.
func NewReconciler(mgr ctrl.Manager, fetcher TokenFetcher) *BankTokenRequestReconciler {
	return &BankTokenRequestReconciler{
		Client:               mgr.GetClient(),
		APIReader:            mgr.GetAPIReader(),
		Fetcher:              fetcher,
		Recorder:             mgr.GetEventRecorder("bank-token-operator"),
		Clock:                clock.RealClock{},
		DefaultTokenLifetime: time.Hour,
	}
}

// cacheCatchUpDelay is how long a reconcile that read a stale cached resource waits.
const cacheCatchUpDelay = 200 * time.Millisecond

// Event reasons. Events are emitted only when something changes.
const (
	eventTokenIssued          = "TokenIssued"
	eventTokenRefreshed       = "TokenRefreshed"
	eventRefreshFailed        = "RefreshFailed"
	eventIssueFailed          = "IssueFailed"
	eventRecovered            = "Recovered"
	eventRefreshTokenRejected = "RefreshTokenRejected"
)

func (r *BankTokenRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	btr := &tokensv1alpha1.BankTokenRequest{}
	if err := r.Client.Get(ctx, req.NamespacedName, btr); err != nil {
		if apierrors.IsNotFound(err) {
			// Owned Secrets go with it through garbage collection; only metrics remain.
			r.Metrics.forget(req.Namespace, req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !btr.DeletionTimestamp.IsZero() {
		r.statusWrites.forget(btr.UID)
		return ctrl.Result{}, nil
	}
	if r.statusWrites.isStale(btr) {
		return ctrl.Result{RequeueAfter: cacheCatchUpDelay}, nil
	}
	original := btr.DeepCopy()

	result, reconcileErr := r.reconcile(ctx, btr)

	// Status is written once, and only when it changed: an idle reconcile writes nothing.
	if !equality.Semantic.DeepEqual(original.Status, btr.Status) {
		if err := r.Client.Status().Patch(ctx, btr, client.MergeFrom(original)); err != nil {
			reconcileErr = errors.Join(reconcileErr, fmt.Errorf("writing status: %w", err))
		} else {
			r.statusWrites.record(btr.UID, original.ResourceVersion)
		}
	}
	r.Metrics.observe(btr)
	return result, reconcileErr
}

func (r *BankTokenRequestReconciler) reconcile(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	now := r.Clock.Now()

	g, err := r.gather(ctx, btr)
	if err != nil {
		setReconciling(btr, tokensv1alpha1.ReasonInternalError, "reading referenced objects failed; retrying")
		return ctrl.Result{}, err
	}
	btr.Status.ObservedGeneration = btr.Generation

	if g.Problem != nil {
		// Nothing can be sent until the user fixes the inputs; the watches bring us back then.
		r.reportHeld(btr, g.Held, now, g.Problem.Reason, g.Problem.Message)
		setStalled(btr, g.Problem.Reason, g.Problem.Message)
		setReconciling(btr, "", "")
		return requeueAtExpiry(g.Held, now), nil
	}
	setStalled(btr, "", "")

	if btr.Spec.Suspend {
		r.reportHeld(btr, g.Held, now, tokensv1alpha1.ReasonSuspended, "suspended: no token is requested or refreshed")
		setReconciling(btr, "", "")
		btr.Status.RenewalTime = nil
		return requeueAtExpiry(g.Held, now), nil
	}

	in := policyInput{Request: btr, Held: g.Held, HeldProblem: g.HeldProblem, RequestHash: g.RequestHash, Now: now}
	reason, message, issue := needsIssuance(in)
	if !issue {
		if err := r.syncOutputSecretMetadata(ctx, btr, g.OutputSecret); err != nil {
			return ctrl.Result{}, err
		}
		r.reportIssued(btr, g.Held, now)
		clearFailures(btr)
		return requeueAt(btr.Status.RenewalTime.Time, now), nil
	}

	if wait, until := retryGate(in); wait {
		if g.Held != nil && !g.Held.validAt(now) && !isReadyReason(btr, tokensv1alpha1.ReasonTokenExpired) {
			// The token ran out while retries wait: the workload holds nothing usable now.
			// A message already written by the last failed attempt is kept.
			setReady(btr, metav1.ConditionFalse, tokensv1alpha1.ReasonTokenExpired, fmt.Sprintf(
				"the token expired at %s and obtaining a new one is failing (%d attempts, the last at %s)",
				formatTime(g.Held.ExpiresAt), btr.Status.FailedAttempts, formatTime(btr.Status.LastFailureTime.Time)))
		}
		// Come back for the next attempt, or when the held token expires if that is sooner.
		if g.Held.validAt(now) && (until.IsZero() || g.Held.ExpiresAt.Before(until)) {
			until = g.Held.ExpiresAt
		}
		if until.IsZero() {
			return ctrl.Result{}, nil
		}
		return requeueAt(until, now), nil
	}

	log.V(1).Info("obtaining a token", "reason", reason, "detail", message)
	// Told apart before the write below creates the Secret.
	refreshed := g.Held != nil || g.OutputSecret != nil
	tok, err := r.obtain(ctx, btr, g)
	if err != nil {
		return r.recordFailure(ctx, btr, g, now, err)
	}
	// The Secret and status keep whole seconds; deciding on the same values later keeps
	// every derived time (renewal, jitter) identical, so a later reconcile writes nothing.
	tok.IssuedAt = tok.IssuedAt.Truncate(time.Second)
	tok.ExpiresAt = tok.ExpiresAt.Truncate(time.Second)
	if err := r.writeOutputSecret(ctx, btr, g, tok); err != nil {
		r.reportWriteFailure(btr, g.Held, now, err)
		return ctrl.Result{}, err
	}

	failedBefore := btr.Status.FailedAttempts
	held := &heldToken{AccessToken: tok.AccessToken, TokenType: tok.TokenType, Scope: tok.Scope,
		IssuedAt: tok.IssuedAt, ExpiresAt: tok.ExpiresAt, RequestHash: g.RequestHash}
	r.reportIssued(btr, held, now)
	btr.Status.LastRefreshRequestedAt = btr.Annotations[tokensv1alpha1.RefreshRequestedAtAnnotation]
	switch {
	case failedBefore > 0:
		r.event(btr, corev1.EventTypeNormal, eventRecovered, "Recover",
			"obtained a token after %d failed attempts; valid until %s", failedBefore, formatTime(tok.ExpiresAt))
	case !r.IssueEvents:
	case refreshed:
		r.event(btr, corev1.EventTypeNormal, eventTokenRefreshed, "Refresh",
			"%s: new token valid until %s", message, formatTime(tok.ExpiresAt))
	default:
		r.event(btr, corev1.EventTypeNormal, eventTokenIssued, "Issue",
			"token valid until %s written to Secret %s", formatTime(tok.ExpiresAt), outputSecretName(btr))
	}
	clearFailures(btr)
	return requeueAt(btr.Status.RenewalTime.Time, now), nil
}

func clearFailures(btr *tokensv1alpha1.BankTokenRequest) {
	btr.Status.FailedAttempts = 0
	btr.Status.LastFailureTime = nil
	btr.Status.LastFailureRequestHash = ""
}

// obtain gets a token: with the refresh token when one is held, falling back at once to the
// primary grant when the bank rejects it. A refresh token whose fate is unknown after a
// failed call is never sent again (RFC 9700): rotating servers treat reuse as theft.
func (r *BankTokenRequestReconciler) obtain(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) (*providers.Token, error) {
	req := r.providerRequest(btr, g)
	if rt := g.RefreshToken; !rt.IsZero() && !r.spent.contains(rt) {
		req.RefreshToken = rt
		tok, err := r.fetch(ctx, btr, req, providers.GrantRefreshToken)
		if err == nil {
			return tok, r.persistRefreshToken(ctx, btr, g, tok.RefreshToken, true)
		}
		var perr *providers.Error
		errors.As(err, &perr)
		switch {
		case perr != nil && perr.Class == providers.ClassRefreshTokenRejected:
			r.spent.add(rt)
			r.event(btr, corev1.EventTypeNormal, eventRefreshTokenRejected, "Refresh",
				"the bank rejected the refresh token; falling back to the %s grant", primaryGrant(&btr.Spec))
		case perr != nil && (perr.Class == providers.ClassRateLimited || perr.Class == providers.ClassConfiguration ||
			perr.Reason == providers.ReasonEndpointUnreachable):
			// The bank never processed it: the refresh token is still good.
			return nil, err
		default:
			r.spent.add(rt)
			return nil, errors.Join(err, r.persistRefreshToken(ctx, btr, g, "", false))
		}
		req.RefreshToken = ""
	}
	tok, err := r.fetch(ctx, btr, req, primaryGrant(&btr.Spec))
	if err != nil {
		if r.spent.contains(g.RefreshToken) {
			// Forget the dead refresh token so that a restart does not send it again.
			return nil, errors.Join(err, r.persistRefreshToken(ctx, btr, g, "", false))
		}
		return nil, err
	}
	return tok, r.persistRefreshToken(ctx, btr, g, tok.RefreshToken, false)
}

func (r *BankTokenRequestReconciler) fetch(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, req providers.Request, grant providers.GrantType) (*providers.Token, error) {
	start := r.Clock.Now()
	tok, err := r.Fetcher.Fetch(ctx, req)
	r.Metrics.observeUpstream(btr.Spec.Provider, grant, err, r.Clock.Now().Sub(start))
	return tok, err
}

func (r *BankTokenRequestReconciler) providerRequest(btr *tokensv1alpha1.BankTokenRequest, g *gathered) providers.Request {
	headers := make([]providers.Header, 0, len(btr.Spec.Headers))
	for _, h := range btr.Spec.Headers {
		headers = append(headers, providers.Header{Name: h.Name, Value: h.Value})
	}
	return providers.Request{
		Provider:             providers.Name(btr.Spec.Provider),
		TokenEndpoint:        btr.Spec.Endpoint,
		GrantType:            providers.GrantType(btr.Spec.GrantType),
		ClientAuthentication: providers.ClientAuthentication(btr.Spec.ClientAuthentication),
		Scope:                btr.Spec.Scope,
		Credentials:          g.Credentials,
		Headers:              headers,
		Metadata:             btr.Spec.Metadata,
		TLS:                  g.TLS,
		DefaultLifetime:      r.DefaultTokenLifetime,
		AllowInsecureHTTP:    r.AllowInsecureEndpoints,
	}
}

// persistRefreshToken writes the refresh token down before the access token it came with is
// published. An empty token clears a dead one. keepWhenNone: a refresh that returned no new
// refresh token leaves the current one in place (RFC 6749 §6: it stays valid).
func (r *BankTokenRequestReconciler) persistRefreshToken(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, rt providers.Secret, keepWhenNone bool) error {
	if rt.IsZero() && (keepWhenNone || g.RefreshSecret == nil || len(g.RefreshSecret.Data[refreshTokenKey]) == 0) {
		return nil
	}
	if g.RefreshSecret != nil && string(g.RefreshSecret.Data[refreshTokenKey]) == rt.Reveal() {
		return nil
	}
	secret := g.RefreshSecret
	if secret == nil {
		secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: btr.Namespace, Name: refreshSecretName(btr)}}
	}
	secret.Labels, secret.Annotations = ownedSecretMeta(btr, roleRefreshToken, secret.Labels, secret.Annotations)
	secret.Type = corev1.SecretTypeOpaque
	secret.Data = map[string][]byte{}
	if !rt.IsZero() {
		secret.Data[refreshTokenKey] = []byte(rt.Reveal())
	}
	if err := controllerutil.SetControllerReference(btr, secret, r.Client.Scheme()); err != nil {
		return err
	}
	var err error
	if g.RefreshSecret == nil {
		err = r.Client.Create(ctx, secret)
	} else {
		err = r.Client.Update(ctx, secret)
	}
	if err != nil {
		// The new refresh token is lost; the one just used is spent. Never send it again.
		r.spent.add(g.RefreshToken)
		return fmt.Errorf("writing refresh-token Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	r.ownWrites.record(secret)
	g.RefreshSecret = secret
	g.RefreshToken = rt
	return nil
}

// writeOutputSecret publishes the token for workloads.
func (r *BankTokenRequestReconciler) writeOutputSecret(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, tok *providers.Token) error {
	data := outputSecretData(tok)
	secret := g.OutputSecret
	if secret == nil {
		secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: btr.Namespace, Name: outputSecretName(btr)}}
	}
	secret.Labels, secret.Annotations = ownedSecretMeta(btr, roleToken, nil, map[string]string{
		annotationIssuedAt:  formatTime(tok.IssuedAt),
		annotationInputHash: g.RequestHash,
		annotationChecksum:  dataChecksum(data),
	})
	secret.Type = corev1.SecretTypeOpaque
	secret.Data = data
	if err := controllerutil.SetControllerReference(btr, secret, r.Client.Scheme()); err != nil {
		return err
	}
	var err error
	if g.OutputSecret == nil {
		err = r.Client.Create(ctx, secret)
	} else {
		err = r.Client.Update(ctx, secret)
	}
	if err != nil {
		return fmt.Errorf("writing output Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	r.ownWrites.record(secret)
	g.OutputSecret = secret
	return nil
}

// syncOutputSecretMetadata applies a changed secretTemplate without a new token.
func (r *BankTokenRequestReconciler) syncOutputSecretMetadata(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, secret *corev1.Secret) error {
	keep := map[string]string{}
	for _, k := range []string{annotationIssuedAt, annotationInputHash, annotationChecksum} {
		keep[k] = secret.Annotations[k]
	}
	labels, annotations := ownedSecretMeta(btr, roleToken, nil, keep)
	if equality.Semantic.DeepEqual(labels, secret.Labels) && equality.Semantic.DeepEqual(annotations, secret.Annotations) {
		return nil
	}
	secret.Labels, secret.Annotations = labels, annotations
	if err := r.Client.Update(ctx, secret); err != nil {
		return fmt.Errorf("updating output Secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	r.ownWrites.record(secret)
	return nil
}

// recordFailure counts the failure, schedules the retry and says honestly what the workload
// holds: a token that still works keeps Ready true.
func (r *BankTokenRequestReconciler) recordFailure(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, now time.Time, err error) (ctrl.Result, error) {
	var perr *providers.Error
	if !errors.As(err, &perr) {
		// Not the bank: the apiserver refused a write. Let controller-runtime back off.
		r.reportWriteFailure(btr, g.Held, now, err)
		return ctrl.Result{}, err
	}
	status := &btr.Status
	status.FailedAttempts++
	status.LastFailureTime = &metav1.Time{Time: now}
	status.LastFailureRequestHash = g.RequestHash
	// A forced refresh is acted on once, failed or not; retries follow the backoff.
	status.LastRefreshRequestedAt = btr.Annotations[tokensv1alpha1.RefreshRequestedAtAnnotation]

	permanent := perr.Class == providers.ClassPermanent || perr.Class == providers.ClassConfiguration
	message := perr.Message
	var result ctrl.Result
	if permanent {
		message += "; not retrying until the spec or the credentials change"
		status.RenewalTime = nil
		setStalled(btr, perr.Reason, message)
		setReconciling(btr, "", "")
		result = requeueAtExpiry(g.Held, now)
	} else {
		delay := retryDelay(btr.UID, status.FailedAttempts, perr.RetryAfter)
		next := now.Add(delay)
		status.RenewalTime = &metav1.Time{Time: next}
		message += "; next attempt at " + formatTime(next)
		if !g.Held.validAt(now) {
			setReconciling(btr, perr.Reason, message)
		}
		result = ctrl.Result{RequeueAfter: delay}
	}

	if g.Held.validAt(now) {
		setReady(btr, metav1.ConditionTrue, tokensv1alpha1.ReasonRefreshFailing,
			fmt.Sprintf("token valid until %s, but refreshing it failed (%s): %s", formatTime(g.Held.ExpiresAt), perr.Reason, message))
	} else if g.Held != nil {
		// Once a workload's token has run out, that is what Ready says, attempt after attempt;
		// the failure is the detail.
		setReady(btr, metav1.ConditionFalse, tokensv1alpha1.ReasonTokenExpired, fmt.Sprintf(
			"the token expired at %s and obtaining a new one is failing (%s): %s", formatTime(g.Held.ExpiresAt), perr.Reason, message))
	} else {
		setReady(btr, metav1.ConditionFalse, perr.Reason, message)
	}
	if status.FailedAttempts == 1 {
		eventReason := eventIssueFailed
		if g.Held != nil {
			eventReason = eventRefreshFailed
		}
		r.event(btr, corev1.EventTypeWarning, eventReason, "Issue", "%s: %s", perr.Reason, message)
	}
	logf.FromContext(ctx).Info("obtaining a token failed", "reason", perr.Reason, "class", perr.Class,
		"attempts", status.FailedAttempts, "message", perr.Message)
	return result, nil
}

// reportWriteFailure says that the token could not be stored: the apiserver refused a write
// (often RBAC). Its message names the object and the verb, never a value.
func (r *BankTokenRequestReconciler) reportWriteFailure(btr *tokensv1alpha1.BankTokenRequest, held *heldToken, now time.Time, err error) {
	message := "storing the token failed; retrying: " + err.Error()
	setReconciling(btr, tokensv1alpha1.ReasonInternalError, message)
	r.reportHeld(btr, held, now, tokensv1alpha1.ReasonInternalError, message)
}

// reportIssued records a good token in status.
func (r *BankTokenRequestReconciler) reportIssued(btr *tokensv1alpha1.BankTokenRequest, held *heldToken, now time.Time) {
	status := &btr.Status
	status.SecretName = outputSecretName(btr)
	status.TokenType = held.TokenType
	status.Scope = held.Scope
	status.IssuedAt = &metav1.Time{Time: held.IssuedAt.Truncate(time.Second)}
	status.ExpiresAt = &metav1.Time{Time: held.ExpiresAt.Truncate(time.Second)}
	renewAt := renewalTime(&btr.Spec, btr.UID, held.IssuedAt, held.ExpiresAt)
	status.RenewalTime = &metav1.Time{Time: renewAt.Truncate(time.Second)}
	setReady(btr, metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued,
		fmt.Sprintf("token valid until %s, renewal at %s", formatTime(held.ExpiresAt), formatTime(renewAt)))
	setReconciling(btr, "", "")
	setStalled(btr, "", "")
}

// reportHeld says what the workload holds when no token is being obtained.
func (r *BankTokenRequestReconciler) reportHeld(btr *tokensv1alpha1.BankTokenRequest, held *heldToken, now time.Time, reason, message string) {
	if held.validAt(now) {
		setReady(btr, metav1.ConditionTrue, reason,
			fmt.Sprintf("token valid until %s; %s", formatTime(held.ExpiresAt), message))
		return
	}
	setReady(btr, metav1.ConditionFalse, reason, message)
}

func (r *BankTokenRequestReconciler) event(btr *tokensv1alpha1.BankTokenRequest, eventType, reason, action, note string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(btr, nil, eventType, reason, action, note, args...)
	}
}

func requeueAt(t, now time.Time) ctrl.Result {
	if d := t.Sub(now); d > 0 {
		return ctrl.Result{RequeueAfter: d}
	}
	return ctrl.Result{RequeueAfter: time.Second}
}

// requeueAtExpiry comes back when a held token expires, so that Ready turns false on time.
func requeueAtExpiry(held *heldToken, now time.Time) ctrl.Result {
	if held.validAt(now) {
		return requeueAt(held.ExpiresAt, now)
	}
	return ctrl.Result{}
}
