package controller

import (
	"context"
	"fmt"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Connections. A BankTokenRequest either carries its bank client inline (spec.BankClient) or
// names a BankConnection or ClusterBankConnection that holds it (spec.connectionRef). The
// reconciler resolves the connection once, at the start of a reconcile, and from then on
// works on an effective copy of the request whose Spec.BankClient is the connection's: gather,
// decide, act, revocation and metrics read the effective spec as they read an inline one, and
// only the namespace the client's Secrets are read from differs (gathered.referencesNamespace).
//
// The effective spec never goes back to the apiserver. The reconciler writes a request
// three ways, and none can carry it: the status patch and the finalizer patch are merge
// patches computed between two copies that hold the same effective spec (so no spec field
// is in them), sent on a copy whose answer (the stored object, without the connection's
// fields) is not decoded into the effective request (see writeStatus and patchFinalizer);
// the owned Secrets take only the request's name, namespace and UID.

// resolvedConnection is the connection a request names, as read for one reconcile. The
// calls of every request that uses it count against one budget: gathered.Connection
// hands it to the token-call point.
type resolvedConnection struct {
	// Kind is tokensv1alpha1.KindBankConnection or KindClusterBankConnection.
	Kind string
	// Namespace is a BankConnection's (the request's own); "" for a ClusterBankConnection.
	Namespace string
	Name      string
	UID       types.UID
	// Generation is the connection's spec generation, which status.observed follows.
	Generation int64
	Spec       tokensv1alpha1.BankConnectionSpec
	// SecretsNamespace is where the Secrets and ConfigMaps its spec names are read: a
	// BankConnection's own namespace, the cluster connection namespace for a
	// ClusterBankConnection.
	SecretsNamespace string
}

// String names the connection in messages and events: "ClusterBankConnection paymob" or
// "BankConnection payments/paymob".
func (c *resolvedConnection) String() string {
	if c.Namespace == "" {
		return c.Kind + " " + c.Name
	}
	return c.Kind + " " + c.Namespace + "/" + c.Name
}

// observedVersion identifies the connection's spec as a decision rests on it: another
// generation, or the connection deleted and created again, re-verifies its requests.
func (c *resolvedConnection) observedVersion() string {
	return "connection/" + c.Kind + "/" + c.Namespace + "/" + c.Name + "/" + string(c.UID) + "/" + strconv.FormatInt(c.Generation, 10)
}

// connectionKey is how the request index names a connection: "<kind>/<name>". A
// BankConnection's namespace is the request's own, so kind and name are enough.
func connectionKey(kind, name string) string { return kind + "/" + name }

// resolution is what resolving a request's connection found.
type resolution struct {
	// request is the request to work on: the one read for an inline request, the effective
	// copy for one that names a connection it may use or a connection that refuses it.
	request *tokensv1alpha1.BankTokenRequest
	// connection is nil for an inline request and for a connection that cannot be read.
	connection *resolvedConnection
	// refusal says why the request may not use its connection; nil when it may.
	refusal *accessRefusal
}

// resolve resolves btr's connection and judges the gates. The effective request carries
// the connection's client even when a gate refuses: taking access away revokes the grants
// with it. An error is a failure to read the cache.
func (r *BankTokenRequestReconciler) resolve(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest) (resolution, error) {
	ref := btr.Spec.ConnectionRef
	if ref == nil {
		return resolution{request: btr}, nil
	}
	conn, refusal, err := r.readConnection(ctx, btr.Namespace, ref)
	if err != nil || conn == nil {
		return resolution{request: btr, refusal: refusal}, err
	}
	effective := btr.DeepCopy()
	effective.Spec.BankClient = *conn.Spec.BankClient.DeepCopy()
	refusal, err = r.judgeGates(ctx, btr, conn)
	return resolution{request: effective, connection: conn, refusal: refusal}, err
}

// readConnection reads the connection ref names for a request in namespace, from the
// manager's cache. A connection that does not exist, or a kind the operator does not
// serve, is a refusal.
func (r *BankTokenRequestReconciler) readConnection(ctx context.Context, namespace string, ref *tokensv1alpha1.ConnectionReference) (*resolvedConnection, *accessRefusal, error) {
	kind := ref.KindOrDefault()
	if kind == tokensv1alpha1.KindClusterBankConnection && r.ClusterConnectionNamespace == "" {
		return nil, &accessRefusal{tokensv1alpha1.ReasonClusterConnectionsNotServed, fmt.Sprintf(
			"spec.connectionRef names ClusterBankConnection %s, but this operator serves none: confined to namespaces "+
				"(--watch-namespaces), it watches no cluster-scoped object unless started with --cluster-connection-namespace",
			ref.Name)}, nil
	}
	conn := &resolvedConnection{Kind: kind, Name: ref.Name}
	var obj client.Object
	var spec *tokensv1alpha1.BankConnectionSpec
	if kind == tokensv1alpha1.KindClusterBankConnection {
		c := &tokensv1alpha1.ClusterBankConnection{}
		obj, spec, conn.SecretsNamespace = c, &c.Spec, r.ClusterConnectionNamespace
	} else {
		c := &tokensv1alpha1.BankConnection{}
		obj, spec, conn.Namespace, conn.SecretsNamespace = c, &c.Spec, namespace, namespace
	}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: conn.Namespace, Name: conn.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, connectionNotFound(kind, namespace, ref.Name), nil
		}
		return nil, nil, fmt.Errorf("reading %s: %w", conn, err)
	}
	conn.UID, conn.Generation, conn.Spec = obj.GetUID(), obj.GetGeneration(), *spec
	return conn, nil, nil
}

// connectionNotFound is the refusal of a request in namespace whose connection is missing.
func connectionNotFound(kind, namespace, name string) *accessRefusal {
	if kind == tokensv1alpha1.KindClusterBankConnection {
		return &accessRefusal{tokensv1alpha1.ReasonConnectionNotFound, fmt.Sprintf(
			"ClusterBankConnection %s named by spec.connectionRef does not exist", name)}
	}
	return &accessRefusal{tokensv1alpha1.ReasonConnectionNotFound, fmt.Sprintf(
		"BankConnection %s/%s named by spec.connectionRef does not exist (a BankConnection serves only the requests "+
			"of its own namespace; a connection shared across namespaces is a ClusterBankConnection)", namespace, name)}
}
