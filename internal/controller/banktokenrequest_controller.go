// Package controller reconciles BankTokenRequests. It knows Kubernetes and no bank's quirks.
// Each reconcile runs four phases: gather reads the inputs once, decide runs pure policies
// on them, act makes at most one token call (plus one fallback when a refresh token is
// rejected) and writes the owned Secrets, and report derives status from what act did.
//
// Watches: BankTokenRequests (spec and annotation changes), the Secrets they own (metadata
// only, selected by label) and the Secrets and ConfigMaps they reference (metadata only,
// through an index, in namespaces that hold requests: see package referencewatch).
// Writes: the output Secret, the refresh-token Secret, status, events.
package controller

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/callbudget"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/referencewatch"
	"github.com/banktoken/bank-token-operator/internal/sharding"
	"github.com/banktoken/bank-token-operator/internal/tokencalls"
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
	// Revoker revokes the grants the operator stops using, and those left when a resource
	// is deleted; nil turns revocation (and the finalizer) off.
	Revoker  GrantRevoker
	Recorder events.EventRecorder
	// Clock is the one clock of every decision; the providers' client should share it.
	Clock   clock.PassiveClock
	Metrics *Metrics
	// Budgets are the connections' call budgets, each shared by the requests that name the
	// connection (see connectionbudget.go); nil: calls are not budgeted.
	Budgets *callbudget.Budgets
	// Settings are the operator's choices that shape a decision (see settings.go).
	Settings
	// IssuerMetadataInterval is how long an issuer's metadata is used before it is read
	// again; issuermetadata.DefaultInterval when zero. Outside Settings: it shapes no
	// decision about a token, only when a document is read.
	IssuerMetadataInterval time.Duration
	issuerMetadata         issuerMetadataCache
	// Shard is this manager's place in a ring of kubernetes-controller-sharding; the zero
	// value works on every request (see shard.go).
	Shard sharding.Shard
	// RingMembers counts the live shards of Shard's ring, which share each connection's call
	// budget; nil when not sharded.
	RingMembers interface{ Count() int }

	// ownedSecrets (the manager's cache of owned Secrets' metadata) and references (the
	// watch of referenced objects) are set by SetupWithManager. Together they tell a new
	// resource which Secrets cannot exist yet, sparing it their reads.
	ownedSecrets client.Reader
	references   *referencewatch.Watch

	// connectionChanges, set by the connection status controller's setup, hears of changes
	// to the Secrets and ConfigMaps connections read (see notifyConnectionChange).
	connectionChanges chan<- event.GenericEvent

	spent        spentRefreshTokens
	tokenCalls   *tokencalls.Slots // no cap until SetupWithManager knows the workers
	ownWrites    ownWrites
	statusWrites statusWrites
}

// NewReconciler wires a reconciler to the manager's clients and event recorder and to the
// real clock, with fetcher as its way to the banks, and the flags' DefaultSettings (opted-in
// credentials only). Callers set metrics, the settings, and a shared Clock where the
// fetcher has one.
func NewReconciler(mgr ctrl.Manager, fetcher TokenFetcher) *BankTokenRequestReconciler {
	revoker, _ := fetcher.(GrantRevoker)
	return &BankTokenRequestReconciler{
		Revoker:    revoker,
		Client:     mgr.GetClient(),
		APIReader:  mgr.GetAPIReader(),
		Fetcher:    fetcher,
		Recorder:   mgr.GetEventRecorder("bank-token-operator"),
		Clock:      clock.RealClock{},
		Settings:   DefaultSettings(),
		tokenCalls: &tokencalls.Slots{},
	}
}

// Reconcile gathers, decides, acts and reports; status is written once, only if it changed.
// Whatever the priority it was taken at, it comes back at normal priority (see dueFirst); a
// token-call slot held for it and not taken goes to the next in its namespace (see Settle).
func (r *BankTokenRequestReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	defer r.tokenCalls.Settle(req.NamespacedName)
	result, err := r.reconcile(ctx, req)
	result.Priority = ptr.To(priorityNormal)
	return result, err
}

func (r *BankTokenRequestReconciler) reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	stored, retryAfter, err := r.current(ctx, req)
	if stored == nil {
		return ctrl.Result{RequeueAfter: retryAfter}, err
	}
	// Once, before anything reads the spec: from here on, btr is the effective request.
	resolved, err := r.resolve(ctx, stored)
	if err != nil {
		return ctrl.Result{}, err
	}
	btr, conn := resolved.request, resolved.connection
	if !btr.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, resolved)
	}
	now := r.Clock.Now()
	// A shared grant's consumer makes no call of its own; a holder no request reads may be
	// due to go.
	var use sharedGrantUse
	switch r.sharedGrantRoleOf(resolved) {
	case readsSharedGrant:
		return r.reconcileConsumer(ctx, resolved, now)
	case holdsSharedGrant:
		var released bool
		if use, released, err = r.useOfSharedGrant(ctx, resolved, now); released || err != nil {
			return ctrl.Result{}, err
		}
	}
	if resolved.refusal != nil {
		result, err := r.refuse(ctx, resolved, now)
		return use.requeue(result, now), err
	}
	// Nothing due and nothing changed: decided without reading a Secret, so before the
	// namespace's share of token calls is even looked at.
	if result, verified := r.verifyFromMetadata(ctx, btr, conn, now); verified && use.noted(btr) {
		r.Metrics.observe(btr)
		return use.requeue(result, now), nil
	}
	a, free := r.gatherAndAct(ctx, btr, conn, now)
	if !free {
		return ctrl.Result{RequeueAfter: namespaceBusyDelay(btr.UID, now)}, nil
	}
	original, g, o := a.original, a.gathered, a.outcome
	if o.briefBudgetWait(now) {
		r.Metrics.observe(btr)
		return o.requeue(&btr.Status, now), nil
	}
	report(btr, o, now, r.propagationDelay(btr), r.MinRenewalInterval)
	reportIssuer(btr, g, o)
	use.report(btr, o)
	if o.kind != outcomeReadFailed {
		btr.Status.Observed = r.observedAfter(btr, g, o, a.ownWritesBefore)
	}
	r.emitEvents(btr, o, &original.Status)
	if !equality.Semantic.DeepEqual(original.Status, btr.Status) {
		o.err = errors.Join(o.err, r.writeStatus(ctx, original, btr))
	}
	r.Metrics.observe(btr)
	return use.requeue(r.issuerRequeue(g, o.requeue(&btr.Status, now), now), now), o.err
}

// acted is what gatherAndAct read and did.
type acted struct {
	// original is the resource as read, before status is reported on it.
	original *tokensv1alpha1.BankTokenRequest
	gathered *gathered
	outcome  outcome
	// ownWritesBefore are the owned Secrets' versions last written before act (see observedAfter).
	ownWritesBefore ownedSecretVersions
}

// gatherAndAct reads the inputs, decides and acts. A namespace at its cap of token calls is
// not even read (free is false): its Secrets' reads would take the apiserver rate limit the
// other namespaces share. So the slot is taken before the reads, and a resource woken for a
// freed slot reads once; the decision says whether the bank is called, and only then does
// act run within the slot, once the connection's call budget lets the call go. A decision
// that calls no bank acts once the slot is given back, and gives up a place it held among
// the budget's waiters.
func (r *BankTokenRequestReconciler) gatherAndAct(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, conn *resolvedConnection, now time.Time) (a acted, free bool) {
	var d decision
	read, actedInSlot := false, false
	free = r.withTokenCallSlot(btr, func() {
		a, d, read = r.gatherAndDecide(ctx, btr, conn, now)
		if read && d.callsBank() {
			a.outcome, actedInSlot = r.actWithinBudget(ctx, btr, a.gathered, d), true
		}
	})
	if read && !actedInSlot {
		r.withdrawFromBudget(btr, conn)
		a.outcome = r.act(ctx, btr, a.gathered, d)
	}
	return a, free
}

// actWithinBudget acts on a decision that calls the bank: a token call only with the
// permit of the connection's budget, or not at all (the outcome says it waits); revocations
// without one (they renew nothing, and a paused connection already held them back).
func (r *BankTokenRequestReconciler) actWithinBudget(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, d decision) outcome {
	if d.action != actObtain {
		return r.act(ctx, btr, g, d)
	}
	permit, wait := r.takeTokenCall(ctx, g)
	if wait != nil {
		return outcome{kind: outcomeBudgetWait, held: g.Held, why: d, requestHash: g.RequestHash,
			clientCertificate: g.ClientCertificate, signingKeys: g.SigningKeys, budgetWait: wait, waitUntil: wait.retryAt}
	}
	d.permit = permit
	return r.act(ctx, btr, g, d)
}

// gatherAndDecide reads the inputs, brings the finalizer in step with them and decides;
// read is false, and the outcome says why, when the apiserver could not be read.
func (r *BankTokenRequestReconciler) gatherAndDecide(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, conn *resolvedConnection, now time.Time) (a acted, d decision, read bool) {
	g, err := r.gather(ctx, btr, conn)
	if err == nil {
		err = r.syncFinalizer(ctx, btr, g)
	}
	a = acted{original: btr.DeepCopy(), gathered: g, ownWritesBefore: r.lastOwnWrites(btr)}
	if err != nil {
		a.outcome = outcome{kind: outcomeReadFailed, err: err}
		return a, decision{}, false
	}
	in := policyInput{Request: btr, Held: g.Held, HeldProblem: g.HeldProblem, RequestHash: g.RequestHash, Now: now,
		PropagationDelay: r.propagationDelay(btr), MinRenewalInterval: r.MinRenewalInterval,
		RevocationsDue: r.revocationsDue(g, now), SigningKeys: g.SigningKeys}
	if in.RevocationsDue {
		in.ConnectionPausedUntil = r.connectionPausedUntil(g.Connection, now)
	}
	return a, decide(in, g.Problem), true
}
