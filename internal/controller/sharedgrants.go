package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// Shared grants. With a connection's grantSharing Shared, the requests that ask it for the
// same scope share one grant. The grant is held by a BankTokenRequest the operator creates
// beside the connection's Secrets, the holder: it is an ordinary request to the reconciler,
// so rotation, the two chains, the propagation delay, the refresh-state codec, revocation
// and the finalizer apply to it unchanged. The requests that share it, its consumers, make
// no call: each copies the holder's token into its own output Secret (sharedgrantconsumer.go).
// A holder's readers are its consumers and the requests whose output Secret still holds its
// token (status.sharedGrant: a consumer just moved to PerRequest, or to another scope). A
// holder no request reads any more is deleted after a grace, and its finalizer revokes the
// grant (sharedgrantgc.go).
//
// A holder is found by name: one per (connection kind, connection name, normalized scope),
// so that every consumer finds the same one without coordination, and the index
// sharedGrantIndex finds the consumers of a holder.

// sharedGrantIndex indexes BankTokenRequests by the holders whose grant they read or would
// read, as "<namespace>/<name>" (sharedGrantKeys).
const sharedGrantIndex = ".sharedGrant"

// sharedGrantRole is what a request is to a shared grant.
type sharedGrantRole int

const (
	// notSharing: the request holds a grant of its own (inline, PerRequest, or refused).
	notSharing sharedGrantRole = iota
	// holdsSharedGrant: the request is a holder the operator created.
	holdsSharedGrant
	// readsSharedGrant: the request is a consumer: its connection shares grants and admits it.
	readsSharedGrant
)

// sharedGrantRoleOf says what the resolved request is to a shared grant.
func (r *BankTokenRequestReconciler) sharedGrantRoleOf(resolved resolution) sharedGrantRole {
	switch {
	case r.isSharedGrantHolder(resolved.request):
		return holdsSharedGrant
	case resolved.refusal == nil && resolved.connection != nil &&
		resolved.connection.Spec.GrantSharing == tokensv1alpha1.GrantSharingShared:
		return readsSharedGrant
	}
	return notSharing
}

// isSharedGrantHolder: btr carries the holder label and lies in its connection's Secrets
// namespace. Both, for a ClusterBankConnection's holder is exempt from the namespace gate:
// the label alone would let a tenant's request in. No tenant can create a request in the
// cluster connection namespace.
func (r *BankTokenRequestReconciler) isSharedGrantHolder(btr *tokensv1alpha1.BankTokenRequest) bool {
	if btr.Labels[tokensv1alpha1.SharedGrantLabel] != tokensv1alpha1.SharedGrantLabelValue {
		return false
	}
	namespace, ok := r.connectionSecretsNamespace(btr)
	return ok && namespace == btr.Namespace
}

// propagationDelay is how long the token a renewal of btr replaces must stay usable:
// SecretPropagationDelay, and for a shared grant's holder SharedGrantCopyAllowance more,
// for its readers' workloads read the copies its readers make, a while after its own
// Secret is written. It times the renewal, the refresh of the standby chain and the
// revocation of a dropped one, as SecretPropagationDelay does for any request.
func (r *BankTokenRequestReconciler) propagationDelay(btr *tokensv1alpha1.BankTokenRequest) time.Duration {
	if r.isSharedGrantHolder(btr) {
		return r.SecretPropagationDelay + r.SharedGrantCopyAllowance
	}
	return r.SecretPropagationDelay
}

// connectionSecretsNamespace is where the Secrets of btr's connection are read, and so where
// its shared grants' holders live; false for an inline request, or a ClusterBankConnection
// the operator does not serve.
func (r *BankTokenRequestReconciler) connectionSecretsNamespace(btr *tokensv1alpha1.BankTokenRequest) (string, bool) {
	ref := btr.Spec.ConnectionRef
	switch {
	case ref == nil:
		return "", false
	case ref.KindOrDefault() == tokensv1alpha1.KindClusterBankConnection:
		return r.ClusterConnectionNamespace, r.ClusterConnectionNamespace != ""
	}
	return btr.Namespace, true
}

// sharedGrantHolderKey is the holder btr would read from were its connection sharing
// grants; false for a request that names no connection the operator serves.
func (r *BankTokenRequestReconciler) sharedGrantHolderKey(btr *tokensv1alpha1.BankTokenRequest) (types.NamespacedName, bool) {
	namespace, ok := r.connectionSecretsNamespace(btr)
	if !ok {
		return types.NamespacedName{}, false
	}
	ref := btr.Spec.ConnectionRef
	return types.NamespacedName{Namespace: namespace, Name: sharedGrantHolderName(ref.KindOrDefault(), ref.Name, btr.Spec.Scope)}, true
}

// normalizedScope is scope's values, each once, sorted: "write read read" and "read write"
// ask for the same grant.
func normalizedScope(scope string) string {
	values := strings.Fields(scope)
	slices.Sort(values)
	return strings.Join(slices.Compact(values), " ")
}

// holderNamePrefixLength keeps a holder's name, and so its Secrets' names and the label
// values that carry it, readable and within 63 characters.
const holderNamePrefixLength = 40

// sharedGrantHolderName is the holder's name for a connection and scope: the connection's
// name (cut) and a hash of all three, so that kinds, names and scopes never share a holder.
func sharedGrantHolderName(kind, connection, scope string) string {
	sum := sha256.Sum256([]byte(kind + "\x00" + connection + "\x00" + normalizedScope(scope)))
	prefix := connection
	if len(prefix) > holderNamePrefixLength {
		prefix = strings.TrimRight(prefix[:holderNamePrefixLength], "-.")
	}
	return prefix + "-shared-" + hex.EncodeToString(sum[:4])
}

// connectionLabelValue names a connection in ConnectionLabel: "<kind>.<name>", cut and
// suffixed with a hash when longer than a label value may be.
func connectionLabelValue(kind, name string) string {
	value := kind + "." + name
	if len(value) <= 63 {
		return value
	}
	sum := sha256.Sum256([]byte(value))
	return strings.TrimRight(value[:54], "-_.") + "-" + hex.EncodeToString(sum[:4])
}

// newSharedGrantHolder is the holder of conn's grant for scope. No owner reference: its
// consumers live in other namespaces, and it goes when the last of them has gone
// (sharedgrantgc.go).
//
// Its renewal settings are left to the defaults (two thirds of the lifetime, or the
// propagation delay before expiry), whatever its consumers carry. The grant is one for all
// of them: taking the earliest renewal any consumer asks for would let one namespace's
// renewBeforePercentage: 99 spend the connection's call budget for every namespace, which
// is what sharing is chosen to save; and the default already leaves each consumer's
// workloads the propagation delay. A consumer's status says its settings do not apply.
func newSharedGrantHolder(key types.NamespacedName, conn *resolvedConnection, scope string) *tokensv1alpha1.BankTokenRequest {
	return &tokensv1alpha1.BankTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: map[string]string{
			tokensv1alpha1.SharedGrantLabel: tokensv1alpha1.SharedGrantLabelValue,
			tokensv1alpha1.ConnectionLabel:  connectionLabelValue(conn.Kind, conn.Name),
			tokensv1alpha1.ManagedByLabel:   tokensv1alpha1.ManagedByValue,
		}},
		Spec: tokensv1alpha1.BankTokenRequestSpec{
			ConnectionRef: &tokensv1alpha1.ConnectionReference{Kind: conn.Kind, Name: conn.Name},
			Scope:         normalizedScope(scope),
			SecretName:    key.Name,
		},
	}
}

// ensureSharedGrantHolder returns the holder at key from the cache, creating it when there
// is none (created is then true, and the object has no status yet); a conflict says why the
// object at key cannot be used. A shard reads it from the apiserver: the sharder may have
// assigned the holder to another shard, whose requests are not in this one's cache.
func (r *BankTokenRequestReconciler) ensureSharedGrantHolder(ctx context.Context, key types.NamespacedName, conn *resolvedConnection, scope string) (holder *tokensv1alpha1.BankTokenRequest, created bool, conflict string, err error) {
	holder = &tokensv1alpha1.BankTokenRequest{}
	var reader client.Reader = r.Client
	if r.Shard.Enabled() {
		reader = r.APIReader
	}
	err = reader.Get(ctx, key, holder)
	switch {
	case err == nil:
		return holder, false, r.notHolderOf(holder, conn, scope), nil
	case !apierrors.IsNotFound(err):
		return nil, false, "", fmt.Errorf("reading the shared grant's holder %s: %w", key, err)
	}
	holder = newSharedGrantHolder(key, conn, scope)
	if err := r.Client.Create(ctx, holder); err != nil {
		if apierrors.IsAlreadyExists(err) {
			// Another consumer created it first: the cache will show it.
			return nil, false, "", nil
		}
		return nil, false, "", fmt.Errorf("creating the shared grant's holder %s: %w", key, err)
	}
	return holder, true, "", nil
}

// notHolderOf says why holder cannot hold conn's grant for scope ("" when it can): it is
// not the operator's, or holds another grant (edited by hand).
func (r *BankTokenRequestReconciler) notHolderOf(holder *tokensv1alpha1.BankTokenRequest, conn *resolvedConnection, scope string) string {
	ref := holder.Spec.ConnectionRef
	switch {
	case !r.isSharedGrantHolder(holder):
		return fmt.Sprintf("BankTokenRequest %s/%s exists and is not a shared grant's holder (it lacks the label %s=%s); "+
			"rename or delete it", holder.Namespace, holder.Name, tokensv1alpha1.SharedGrantLabel, tokensv1alpha1.SharedGrantLabelValue)
	case ref.KindOrDefault() != conn.Kind || ref.Name != conn.Name || holder.Spec.Scope != normalizedScope(scope):
		return fmt.Sprintf("BankTokenRequest %s/%s holds the shared grant of another connection or scope; delete it, "+
			"and the operator creates the right one", holder.Namespace, holder.Name)
	}
	return ""
}

// sharedGrantKeys are the holders whose grant btr reads or would read, for
// sharedGrantIndex: the one its connection and scope name, whether or not its connection
// shares grants now (the index cannot read the connection), and the one status says its
// output Secret holds the token of. A holder has none.
func (r *BankTokenRequestReconciler) sharedGrantKeys(obj client.Object) []string {
	btr, ok := obj.(*tokensv1alpha1.BankTokenRequest)
	if !ok || r.isSharedGrantHolder(btr) {
		return nil
	}
	var keys []string
	if key, ok := r.sharedGrantHolderKey(btr); ok {
		keys = append(keys, key.String())
	}
	if held := btr.Status.SharedGrant; held != nil {
		if key := (types.NamespacedName{Namespace: held.Namespace, Name: held.Name}).String(); !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
	}
	return keys
}

// sharedGrantReaders counts the requests that read holder's grant: those whose output
// Secret holds its token (status.sharedGrant), and those that will as soon as they are
// reconciled (conn shares grants, admits them, and they ask for the holder's scope).
// Requests being deleted read nothing: their output Secrets go with them.
func (r *BankTokenRequestReconciler) sharedGrantReaders(ctx context.Context, holder *tokensv1alpha1.BankTokenRequest, conn *resolvedConnection) (int, error) {
	key := client.ObjectKeyFromObject(holder)
	list, err := r.candidateReaders(ctx, key, holder.Spec.ConnectionRef.KindOrDefault())
	if err != nil {
		return 0, fmt.Errorf("listing the readers of shared grant %s: %w", key, err)
	}
	readers := 0
	for i := range list.Items {
		reads, err := r.readsGrantOf(ctx, &list.Items[i], key, conn)
		if err != nil {
			return 0, err
		}
		if reads {
			readers++
		}
	}
	return readers, nil
}

// candidateReaders are the requests the index files under the holder at key, of a
// connection of kind. A shard's cache holds only its own requests, and a holder's readers may
// be any shard's: a shard lists them from the apiserver (once per reconcile of a holder, so
// at most once per renewal and per change of a reader in the holder's shard), for a holder
// whose readers it cannot see would be deleted and its grant revoked under them. A
// BankConnection serves its own namespace only, where its holder is: the list is of that
// namespace; a ClusterBankConnection's readers may be in any namespace.
func (r *BankTokenRequestReconciler) candidateReaders(ctx context.Context, key types.NamespacedName, kind string) (*tokensv1alpha1.BankTokenRequestList, error) {
	list := &tokensv1alpha1.BankTokenRequestList{}
	if !r.Shard.Enabled() {
		return list, r.Client.List(ctx, list, client.MatchingFields{sharedGrantIndex: key.String()})
	}
	var opts []client.ListOption
	if kind != tokensv1alpha1.KindClusterBankConnection {
		opts = append(opts, client.InNamespace(key.Namespace))
	}
	all := &tokensv1alpha1.BankTokenRequestList{}
	if err := r.APIReader.List(ctx, all, opts...); err != nil {
		return nil, err
	}
	for i := range all.Items {
		if slices.Contains(r.sharedGrantKeys(&all.Items[i]), key.String()) {
			list.Items = append(list.Items, all.Items[i])
		}
	}
	return list, nil
}

// readsGrantOf says whether btr reads the grant of the holder at key, whose connection is
// conn (nil when it cannot be read).
func (r *BankTokenRequestReconciler) readsGrantOf(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, key types.NamespacedName, conn *resolvedConnection) (bool, error) {
	switch held := btr.Status.SharedGrant; {
	case !btr.DeletionTimestamp.IsZero() || r.isSharedGrantHolder(btr):
		return false, nil
	case held != nil && held.Namespace == key.Namespace && held.Name == key.Name:
		return true, nil
	case conn == nil || conn.Spec.GrantSharing != tokensv1alpha1.GrantSharingShared:
		return false, nil
	}
	ref := btr.Spec.ConnectionRef
	if wouldRead, ok := r.sharedGrantHolderKey(btr); !ok || wouldRead != key || ref.KindOrDefault() != conn.Kind || ref.Name != conn.Name {
		return false, nil
	}
	refusal, err := r.judgeGates(ctx, btr, conn)
	return refusal == nil, err
}

// indexSharedGrants registers sharedGrantIndex.
func (r *BankTokenRequestReconciler) indexSharedGrants(ctx context.Context, indexer client.FieldIndexer) error {
	return indexer.IndexField(ctx, &tokensv1alpha1.BankTokenRequest{}, sharedGrantIndex, r.sharedGrantKeys)
}
