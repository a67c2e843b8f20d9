package controller

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/callbudget"
)

// Connection status. A BankConnection or ClusterBankConnection says in its status whether
// it can serve tokens (CredentialsReady, Ready), which requests use it and which its gates
// refuse, its call budget's use and a pause, and the last failed call through it. Its
// reconciler shares the request reconciler's client, Secret readers, gates and budgets, so
// that the connection is judged as its requests' reconciles judge it.
//
// A status write is apiserver load, so what moves by itself (calls in the window, request
// counts, the last failure) is written at most once per RefreshInterval; conditions, the
// budget's limits and a pause are written at once.

// DefaultConnectionStatusRefresh is how often, at most, a connection's status is rewritten
// for its counts alone.
const DefaultConnectionStatusRefresh = 30 * time.Second

// ConnectionStatusReconciler writes the status of BankConnections and ClusterBankConnections.
type ConnectionStatusReconciler struct {
	// Requests is the request reconciler whose client, readers, gates and budgets are used.
	Requests *BankTokenRequestReconciler
	Metrics  *ConnectionMetrics
	// RefreshInterval: see DefaultConnectionStatusRefresh; zero picks it.
	RefreshInterval time.Duration

	mu sync.Mutex
	// lastWrite is when each connection's status was last written by this process.
	lastWrite map[callbudget.Key]time.Time
}

// NewConnectionStatusReconciler is the status reconciler of requests' connections.
func NewConnectionStatusReconciler(requests *BankTokenRequestReconciler) *ConnectionStatusReconciler {
	return &ConnectionStatusReconciler{Requests: requests}
}

// connectionObject is a connection as read: the object, and its spec and status whatever its kind.
type connectionObject struct {
	object client.Object
	conn   *resolvedConnection
	status *tokensv1alpha1.BankConnectionStatus
}

// connectionKeyOf names the connection a reconcile request is for: a ClusterBankConnection
// has no namespace, a BankConnection always has one.
func connectionKeyOf(req ctrl.Request) callbudget.Key {
	if req.Namespace == "" {
		return callbudget.Key{Kind: tokensv1alpha1.KindClusterBankConnection, Name: req.Name}
	}
	return callbudget.Key{Kind: tokensv1alpha1.KindBankConnection, Namespace: req.Namespace, Name: req.Name}
}

// Reconcile reads the connection, what it names and what names it, and writes its status.
func (c *ConnectionStatusReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	key := connectionKeyOf(req)
	obj, err := c.read(ctx, key)
	if err != nil || obj == nil {
		if err == nil {
			c.forget(key)
		}
		return ctrl.Result{}, err
	}
	now := c.Requests.Clock.Now()
	view, err := c.look(ctx, obj, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	desired := view.status(obj.conn.Generation, obj.status.Conditions)
	heldBack, err := c.writeStatus(ctx, key, obj, desired, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	c.Metrics.observe(key, meta.IsStatusConditionTrue(desired.Conditions, tokensv1alpha1.ConditionReady))
	next := view.nextLook(now, c.refresh())
	if !heldBack.IsZero() && (next.IsZero() || heldBack.Before(next)) {
		next = heldBack
	}
	if next.IsZero() {
		return ctrl.Result{}, nil
	}
	return requeueAt(next, now), nil
}

// read reads the connection key names from the cache; nil when it is gone.
func (c *ConnectionStatusReconciler) read(ctx context.Context, key callbudget.Key) (*connectionObject, error) {
	conn := &resolvedConnection{Kind: key.Kind, Namespace: key.Namespace, Name: key.Name, SecretsNamespace: key.Namespace}
	obj := &connectionObject{conn: conn}
	if key.Kind == tokensv1alpha1.KindClusterBankConnection {
		o := &tokensv1alpha1.ClusterBankConnection{}
		obj.object, obj.status, conn.SecretsNamespace = o, &o.Status, c.Requests.ClusterConnectionNamespace
	} else {
		o := &tokensv1alpha1.BankConnection{}
		obj.object, obj.status = o, &o.Status
	}
	if err := c.Requests.Client.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name}, obj.object); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	switch o := obj.object.(type) {
	case *tokensv1alpha1.ClusterBankConnection:
		conn.Spec = o.Spec
	case *tokensv1alpha1.BankConnection:
		conn.Spec = o.Spec
	}
	conn.UID, conn.Generation = obj.object.GetUID(), obj.object.GetGeneration()
	return obj, nil
}

// look reads what the status says: the credentials, the endpoint, the requests and the budget.
func (c *ConnectionStatusReconciler) look(ctx context.Context, obj *connectionObject, now time.Time) (connectionView, error) {
	r, conn := c.Requests, obj.conn
	var view connectionView
	var err error
	var issuer *connectionIssuer
	if view.credentialsProblem, issuer, err = r.checkCredentials(ctx, conn); err != nil {
		return view, err
	}
	view.endpointProblem = r.checkEndpoint(&tokensv1alpha1.BankTokenRequest{
		Spec: tokensv1alpha1.BankTokenRequestSpec{BankClient: conn.Spec.BankClient}})
	if issuer != nil {
		view.endpoints = &issuer.status
		if issuer.problem != nil {
			view.endpointProblem = issuer.problem
		}
	}
	requests, err := listRequestsNaming(ctx, r.Client, conn.Kind, conn.Namespace, conn.Name)
	if err != nil {
		return view, err
	}
	if view.usage, err = r.usageOf(ctx, conn, requests, obj.status.LastFailure); err != nil {
		return view, err
	}
	view.budget = c.budgetOf(conn, requests, *obj.status, now)
	return view, nil
}

// budgetOf is the connection's budget now, its limits applied and, after a start, seeded.
func (c *ConnectionStatusReconciler) budgetOf(conn *resolvedConnection, requests []tokensv1alpha1.BankTokenRequest,
	status tokensv1alpha1.BankConnectionStatus, now time.Time) callbudget.Snapshot {
	budgets, limits := c.Requests.Budgets, callbudget.LimitsOf(conn.Spec.CallBudget)
	if budgets == nil {
		return callbudget.Snapshot{Limits: limits}
	}
	key := budgetKey(conn)
	budgets.SetLimits(key, limits)
	if !budgets.Seeded(key) {
		seedBudget(budgets, key, limits, requests, status, now)
	}
	snapshot := budgets.Snapshot(key, now)
	if !snapshot.PausedUntil.IsZero() {
		// Status keeps whole seconds: the next one up, so that the pause never looks over early.
		snapshot.PausedUntil = snapshot.PausedUntil.Add(time.Second - 1).Truncate(time.Second)
	}
	return snapshot
}

// writeStatus patches the status to desired: at once when more than its counts changed,
// else once RefreshInterval has passed since the last write. It returns when a write it
// held back is due; zero when it held none back.
func (c *ConnectionStatusReconciler) writeStatus(ctx context.Context, key callbudget.Key, obj *connectionObject,
	desired tokensv1alpha1.BankConnectionStatus, now time.Time) (time.Time, error) {
	current := *obj.status
	if equality.Semantic.DeepEqual(current, desired) {
		return time.Time{}, nil
	}
	if onlyCountsDiffer(current, desired) {
		if due := c.lastWritten(key).Add(c.refresh()); now.Before(due) {
			return due, nil
		}
	}
	original := obj.object.DeepCopyObject().(client.Object)
	*obj.status = desired
	if err := c.Requests.Client.Status().Patch(ctx, obj.object, client.MergeFrom(original)); err != nil {
		return time.Time{}, client.IgnoreNotFound(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastWrite == nil {
		c.lastWrite = map[callbudget.Key]time.Time{}
	}
	c.lastWrite[key] = now
	return time.Time{}, nil
}

// onlyCountsDiffer: desired differs from current only in what moves by itself.
func onlyCountsDiffer(current, desired tokensv1alpha1.BankConnectionStatus) bool {
	desired.Requests, desired.Namespaces, desired.RefusedRequests = current.Requests, current.Namespaces, current.RefusedRequests
	desired.LastFailure = current.LastFailure
	if desired.Budget != nil && current.Budget != nil {
		budget := *desired.Budget
		budget.Calls = current.Budget.Calls
		desired.Budget = &budget
	}
	return equality.Semantic.DeepEqual(current, desired)
}

func (c *ConnectionStatusReconciler) lastWritten(key callbudget.Key) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastWrite[key]
}

func (c *ConnectionStatusReconciler) refresh() time.Duration {
	if c.RefreshInterval > 0 {
		return c.RefreshInterval
	}
	return DefaultConnectionStatusRefresh
}

// forget drops what is kept of a deleted connection: its budget, its series, its last write.
func (c *ConnectionStatusReconciler) forget(key callbudget.Key) {
	if c.Requests.Budgets != nil {
		c.Requests.Budgets.Forget(key)
	}
	c.Metrics.forget(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.lastWrite, key)
}
