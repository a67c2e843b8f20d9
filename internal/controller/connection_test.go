package controller

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// The reconciles below run the fixture's request through a connection that holds its bank
// client: the request keeps only its scope and output Secret.

const (
	fixtureConnection = "paymob-client"
	// fixtureConnectionNamespace is the cluster connection namespace of the fixtures.
	fixtureConnectionNamespace = "bank-clients"
)

// newConnectionFixture moves the fixture's client into a connection of kind (the request's
// credentials Secret into the cluster connection namespace for a ClusterBankConnection),
// changed by mutate.
func newConnectionFixture(t *testing.T, kind string, mutate ...func(*tokensv1alpha1.BankConnectionSpec)) *fixture {
	t.Helper()
	var spec tokensv1alpha1.BankConnectionSpec
	f := newFixture(t, withRevocationEndpoint, func(b *tokensv1alpha1.BankTokenRequest) {
		spec.BankClient, b.Spec.BankClient = b.Spec.BankClient, tokensv1alpha1.BankClient{}
		b.Spec.ConnectionRef = &tokensv1alpha1.ConnectionReference{Kind: kind, Name: fixtureConnection}
	})
	for _, m := range mutate {
		m(&spec)
	}
	f.r.ClusterConnectionNamespace = fixtureConnectionNamespace
	ctx := context.Background()
	meta := metav1.ObjectMeta{Name: fixtureConnection, UID: "uid-connection", Generation: 1}
	if kind == tokensv1alpha1.KindClusterBankConnection {
		must(t, f.client.Create(ctx, &tokensv1alpha1.ClusterBankConnection{ObjectMeta: meta, Spec: spec}))
		moved := credentialsSecret("fixture-password")
		moved.Namespace = fixtureConnectionNamespace
		must(t, f.client.Create(ctx, moved))
		must(t, f.client.Delete(ctx, credentialsSecret("")))
	} else {
		meta.Namespace = f.key.Namespace
		must(t, f.client.Create(ctx, &tokensv1alpha1.BankConnection{ObjectMeta: meta, Spec: spec}))
	}
	must(t, f.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.key.Namespace,
		Labels: map[string]string{"team": "payments"}}}))
	return f
}

// admitPayments is a gate that admits the fixture's namespace by its label.
func admitPayments(spec *tokensv1alpha1.BankConnectionSpec) {
	spec.AllowedNamespaces = &tokensv1alpha1.NamespaceGate{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}}
}

// The reconcile works on the connection's client, and writes none of it back: after the
// finalizer patch and the status patch, the stored request holds no bank client field, and
// the grant is recorded under the connection's revocation endpoint (the effective spec
// survived the finalizer patch's answer, mid-reconcile).
func TestReconcileThroughAConnectionWritesNoneOfItsSpecBack(t *testing.T) {
	f := newConnectionFixture(t, tokensv1alpha1.KindBankConnection)
	f.issue()
	if got := f.bank.calls[0].TokenEndpoint; got != "https://paymob.example/o/token/" {
		t.Fatalf("the token call went to %q, not the connection's endpoint", got)
	}
	stored := f.resource()
	if stored.Spec.BankClient.Endpoint != "" || stored.Spec.BankClient.Provider != "" || stored.Spec.BankClient.CredentialsSecretRef.Name != "" ||
		stored.Spec.BankClient.RevocationEndpoint != "" {
		t.Fatalf("the connection's client was written into the stored request: %+v", stored.Spec.BankClient)
	}
	if !controllerutil.ContainsFinalizer(stored, finalizerRevokeGrants) {
		t.Fatal("no finalizer on a request whose grants can be revoked")
	}
	refresh := f.secret(refreshSecretName(stored))
	if got := refresh.Annotations[annotationRevocationEndpoint]; got != fixtureRevocationEndpoint {
		t.Fatalf("the grant was recorded under revocation endpoint %q, not the connection's: the finalizer patch "+
			"replaced the effective request with the stored one", got)
	}
	f.reconcile()
	f.expectCalls(1)
}

// A ClusterBankConnection's Secrets are read from the cluster connection namespace only.
func TestAClusterConnectionReadsItsSecretsFromTheClusterConnectionNamespace(t *testing.T) {
	f := newConnectionFixture(t, tokensv1alpha1.KindClusterBankConnection, admitPayments)
	f.issue()
	if got := f.bank.calls[0].Credentials.Password.Reveal(); got != "fixture-password" {
		t.Fatal("the token call did not carry the credentials of the cluster connection namespace")
	}
	f.r.ClusterConnectionNamespace = "elsewhere"
	f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Scope = "read write" })
	f.reconcile()
	// The token held stays good; the missing Secret is the one in the new namespace.
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonCredentialsSecretNotFound, "elsewhere/paymob-credentials")
}

// A gate that stops admitting the request takes its token and grant away: the output
// Secret is emptied, the grant revoked at the connection's revocation endpoint, the
// refresh token dropped and the finalizer released; no token call is made.
func TestAGateThatStopsAdmittingTheRequestTakesItsTokenAway(t *testing.T) {
	f := newConnectionFixture(t, tokensv1alpha1.KindClusterBankConnection, admitPayments)
	f.issue()
	grant := f.refreshToken()
	ns := &corev1.Namespace{}
	must(t, f.client.Get(context.Background(), client.ObjectKey{Name: f.key.Namespace}, ns))
	ns.Labels = nil
	must(t, f.client.Update(context.Background(), ns))

	f.reconcile()
	f.expectCalls(1)
	f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonNamespaceNotAdmitted,
		"ClusterBankConnection paymob-client does not admit namespace payments", "token was removed", "1 grant(s) revoked")
	f.expectCondition(tokensv1alpha1.ConditionStalled, true)
	if f.accessToken() != "" || len(f.secret("paymob").Data) != 0 {
		t.Fatal("the output Secret still holds the token")
	}
	if want := []string{fixtureRevocationEndpoint + " " + grant}; !slices.Equal(f.bank.revocations, want) {
		t.Fatalf("revocations %d, want the grant revoked at the connection's revocation endpoint", len(f.bank.revocations))
	}
	if f.refreshToken() != "" || controllerutil.ContainsFinalizer(f.resource(), finalizerRevokeGrants) {
		t.Fatal("the refresh token or the finalizer outlived the access")
	}
	events := f.events()
	for _, want := range []string{eventAccessRefused, eventTokenWithdrawn, eventGrantsRevoked} {
		if !slices.Contains(events, want) {
			t.Errorf("no %s event (events %v)", want, events)
		}
	}

	writes := len(f.writes)
	f.reconcile()
	if len(f.writes) != writes || len(f.bank.revocations) != 1 || len(f.events()) != 0 {
		t.Fatalf("a second reconcile of the refused request wrote, revoked or told again (%v)", f.writes[writes:])
	}
	f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonNamespaceNotAdmitted, "1 grant(s) revoked")
}

// A request whose connection is deleted loses its token, and its grant cannot be revoked
// (the credentials were the connection's): status and an event say so, and its deletion
// does not wait for a revocation that cannot happen.
func TestARequestWhoseConnectionIsGoneLosesItsTokenAndIsDeletedAtOnce(t *testing.T) {
	f := newConnectionFixture(t, tokensv1alpha1.KindBankConnection)
	f.issue()
	must(t, f.client.Delete(context.Background(), &tokensv1alpha1.BankConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.key.Namespace, Name: fixtureConnection}}))
	f.reconcile()
	f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonConnectionNotFound, "token was removed",
		"could not be revoked", "the connection is gone")
	if f.accessToken() != "" || f.refreshToken() != "" || len(f.bank.revocations) != 0 {
		t.Fatal("a token or grant outlived the connection, or a revocation was sent without the connection's credentials")
	}
	if !slices.Contains(f.events(), eventGrantsLeftLive) {
		t.Error("no event says the grant stays live")
	}

	f.update(func(b *tokensv1alpha1.BankTokenRequest) { controllerutil.AddFinalizer(b, finalizerRevokeGrants) })
	must(t, f.client.Delete(context.Background(), f.resource()))
	f.reconcile()
	if err := f.client.Get(context.Background(), f.key, &tokensv1alpha1.BankTokenRequest{}); err == nil {
		t.Fatal("the deletion waits on the finalizer of a request whose connection is gone")
	}
}

// The CRD checks a scope against the provider only on inline requests; through a
// connection, the provider's rules are checked before anything is read or sent.
func TestAScopeTheConnectionsProviderRefusesStallsTheRequestBeforeAnyCall(t *testing.T) {
	f := newConnectionFixture(t, tokensv1alpha1.KindBankConnection, func(spec *tokensv1alpha1.BankConnectionSpec) {
		spec.Provider = tokensv1alpha1.ProviderRAKBank
		spec.RevocationEndpoint = ""
	})
	f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Scope = " " })
	f.writes = nil
	f.reconcile()
	f.expectCalls(0)
	f.expectReady(metav1.ConditionFalse, tokensv1alpha1.ReasonInvalidScope, "BankConnection payments/paymob-client", "RAKBank requires a scope")
	f.expectCondition(tokensv1alpha1.ConditionStalled, true)
	if len(f.writes) != 1 || f.writes[0] != "patch/status *v1alpha1.BankTokenRequest paymob" {
		t.Fatalf("a refused request wrote %v; want its status only", f.writes)
	}
}

// allowedScopes admits a scope whose every value it lists, and refuses an empty one.
func TestAllowedScopesAdmitOnlyListedValues(t *testing.T) {
	conn := &resolvedConnection{Kind: tokensv1alpha1.KindBankConnection, Namespace: "payments", Name: "paymob"}
	if scopeRefused(conn, "") != nil || scopeRefused(conn, "anything at all") != nil {
		t.Error("a connection without allowedScopes refused a scope")
	}
	conn.Spec.AllowedScopes = []string{"read", "write"}
	for scope, refused := range map[string]bool{"read": false, "write  read": false, "read admin": true, "": true, "  ": true, "readwrite": true} {
		if got := scopeRefused(conn, scope) != nil; got != refused {
			t.Errorf("scope %q: refused %v, want %v", scope, got, refused)
		}
	}
}
