// Package controller reconciles BankTokenRequests. It knows Kubernetes and no bank's quirks.
// Each reconcile runs four phases: gather reads the inputs once, decide runs pure policies
// on them, act makes at most one token call (plus one fallback when a refresh token is
// rejected) and writes the owned Secrets, and report derives status from what act did.
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

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
	// Clock is the one clock of every decision; the providers' client should share it.
	Clock   clock.PassiveClock
	Metrics *Metrics
	// AllowInsecureEndpoints admits http:// endpoints; for tests and local sandboxes only.
	AllowInsecureEndpoints bool
	// CredentialsLabelRequired reads only referenced Secrets that carry
	// tokensv1alpha1.CredentialsLabel (see optedIn).
	CredentialsLabelRequired bool
	// DefaultTokenLifetime applies when the bank states no lifetime and the token is no JWT.
	DefaultTokenLifetime time.Duration
	// SecretPropagationDelay is how late a workload may read the output Secret (the kubelet
	// syncs a mounted Secret about a minute after a change): the token a renewal replaces
	// stays usable at least this long, and renewal leaves it before expiry when the
	// lifetime allows.
	SecretPropagationDelay time.Duration
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
// real clock, with fetcher as its way to the banks. Callers set metrics, the policy fields,
// and a shared Clock where the fetcher has one; DefaultTokenLifetime starts at an hour,
// the --default-token-lifetime default.
func NewReconciler(mgr ctrl.Manager, fetcher TokenFetcher) *BankTokenRequestReconciler {
	return &BankTokenRequestReconciler{
		Client:                 mgr.GetClient(),
		APIReader:              mgr.GetAPIReader(),
		Fetcher:                fetcher,
		Recorder:               mgr.GetEventRecorder("bank-token-operator"),
		Clock:                  clock.RealClock{},
		DefaultTokenLifetime:   time.Hour,
		SecretPropagationDelay: DefaultSecretPropagationDelay,
	}
}

// cacheCatchUpDelay is how long a reconcile that read a stale cached resource waits.
const cacheCatchUpDelay = 200 * time.Millisecond

// Reconcile gathers, decides, acts and reports; status is written once, only if it changed.
func (r *BankTokenRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	btr, retryAfter, err := r.current(ctx, req)
	if btr == nil {
		return ctrl.Result{RequeueAfter: retryAfter}, err
	}
	original := btr.DeepCopy()
	now := r.Clock.Now()

	g, err := r.gather(ctx, btr)
	o := outcome{kind: outcomeReadFailed, err: err}
	if err == nil {
		o = r.act(ctx, btr, g, decide(policyInput{Request: btr, Held: g.Held, HeldProblem: g.HeldProblem,
			RequestHash: g.RequestHash, Now: now, PropagationDelay: r.SecretPropagationDelay}, g.Problem))
	}
	report(btr, o, now, r.SecretPropagationDelay)
	r.emitEvents(btr, o, &original.Status)
	if !equality.Semantic.DeepEqual(original.Status, btr.Status) {
		o.err = errors.Join(o.err, r.writeStatus(ctx, original, btr))
	}
	r.Metrics.observe(btr)
	return o.requeue(&btr.Status, now), o.err
}

// current returns the resource to reconcile, or nil when there is none to act on now: it
// is gone, being deleted, or the cache has not yet caught up with our own last status write.
func (r *BankTokenRequestReconciler) current(ctx context.Context, req ctrl.Request) (*tokensv1alpha1.BankTokenRequest, time.Duration, error) {
	btr := &tokensv1alpha1.BankTokenRequest{}
	if err := r.Client.Get(ctx, req.NamespacedName, btr); err != nil {
		if apierrors.IsNotFound(err) {
			// Owned Secrets go with it through garbage collection; only metrics remain.
			r.Metrics.forget(req.Namespace, req.Name)
			return nil, 0, nil
		}
		return nil, 0, err
	}
	if !btr.DeletionTimestamp.IsZero() {
		r.statusWrites.forget(btr.UID)
		return nil, 0, nil
	}
	if r.statusWrites.isStale(btr) {
		return nil, cacheCatchUpDelay, nil
	}
	return btr, 0, nil
}

// writeStatus patches status, and remembers the version it replaced so that a reconcile of
// that stale version from the cache can be recognised.
func (r *BankTokenRequestReconciler) writeStatus(ctx context.Context, original, btr *tokensv1alpha1.BankTokenRequest) error {
	if err := r.Client.Status().Patch(ctx, btr, client.MergeFrom(original)); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	r.statusWrites.record(btr.UID, original.ResourceVersion)
	return nil
}
