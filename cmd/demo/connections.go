package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// The shared connection scene: a platform team's bank client, held once as a
// ClusterBankConnection whose Secrets live in the operator's namespace only, used from two
// tenant namespaces its label selector admits and refused to a third. The objects are built
// here rather than read from config/samples/connections: the sample is a Banfico client, and
// the scene is on RAKBANK, where no failure is injected, so that Banfico's outage neither
// hits the connection's requests nor blurs the account of the connection's bank calls.
const (
	// operatorNamespace is the manager's --cluster-connection-namespace: a
	// ClusterBankConnection's Secrets and ConfigMaps are read from there and nowhere else.
	operatorNamespace     = "bank-token-operator-system"
	sharedConnectionName  = "rakbank-shared"
	sharedBank            = providers.RAKBank
	sharedClientID        = "demo-rakbank-platform-client"
	sharedCredentialsName = "rakbank-shared-client"
	// admissionLabel on a namespace admits it to the connection (its selector).
	admissionLabel = "banktoken.io/rakbank-shared"
	admittedValue  = "allowed"
)

// sharedScopes are the connection's allowedScopes, scopes the sandbox RAKBANK grants.
var sharedScopes = []string{"accounts", "payments"}

// tenant is a namespace with one BankTokenRequest through the shared connection.
type tenant struct {
	namespace string
	// admitted: the namespace carries admissionLabel, so the connection serves it.
	admitted bool
	request  string
	scope    string
}

// secretName is the request's output Secret, in the tenant's namespace.
func (t tenant) secretName() string { return t.request + "-token" }

func (t tenant) String() string { return t.namespace + "/" + t.request }

var tenants = []tenant{
	{namespace: "team-a", admitted: true, request: "accounts", scope: "accounts"},
	{namespace: "team-b", admitted: true, request: "payments", scope: "payments"},
	{namespace: "team-c", admitted: false, request: "accounts", scope: "accounts"},
}

// sharedConnection is what the demo made of the scene.
type sharedConnection struct {
	// clientSecret is the shared client's secret, made for this run; never printed, only
	// searched for in the tenants' Secrets.
	clientSecret string
}

// setUpSharedConnection registers the platform client at the sandbox bank and creates,
// before the manager starts, the operator's namespace with the client's credentials Secret
// and CA bundle, the three tenant namespaces and the ClusterBankConnection.
func (d *demo) setUpSharedConnection(ctx context.Context) error {
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	d.shared = &sharedConnection{clientSecret: "demo-platform-" + hex.EncodeToString(secret)}
	d.bank.AddClient(sharedBank, sharedClientID, d.shared.clientSecret)

	objects := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}},
		harness.CABundleConfigMap(d.bank, operatorNamespace, caConfigMapName),
		d.sharedCredentialsSecret(),
	}
	for _, t := range tenants {
		objects = append(objects, tenantNamespace(t))
	}
	objects = append(objects, d.sharedConnectionObject())
	for _, o := range objects {
		if err := d.k8s.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T %s: %w", o, o.GetName(), err)
		}
	}
	say("created ClusterBankConnection %s: %s client %s, its credentials Secret and CA bundle in %s only "+
		"(the manager's --cluster-connection-namespace)", sharedConnectionName, sharedBank, sharedClientID, operatorNamespace)
	fmt.Printf("      it admits namespaces labelled %s=%s (team-a, team-b; team-c is not) and the scopes %s\n",
		admissionLabel, admittedValue, strings.Join(sharedScopes, ", "))
	return nil
}

// tenantNamespace is t's namespace, labelled for the connection's selector if admitted.
func tenantNamespace(t tenant) *corev1.Namespace {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: t.namespace}}
	if t.admitted {
		ns.Labels = map[string]string{admissionLabel: admittedValue}
	}
	return ns
}

// sharedCredentialsSecret holds the platform client's credentials, opted in to be sent.
func (d *demo) sharedCredentialsSecret() *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: sharedCredentialsName, Namespace: operatorNamespace,
			Labels: map[string]string{tokensv1alpha1.CredentialsLabel: tokensv1alpha1.CredentialsLabelValue}},
		Data: map[string][]byte{
			tokensv1alpha1.DefaultClientIDKey:     []byte(sharedClientID),
			tokensv1alpha1.DefaultClientSecretKey: []byte(d.shared.clientSecret),
		},
	}
}

func (d *demo) sharedConnectionObject() *tokensv1alpha1.ClusterBankConnection {
	return &tokensv1alpha1.ClusterBankConnection{
		ObjectMeta: metav1.ObjectMeta{Name: sharedConnectionName},
		Spec: tokensv1alpha1.BankConnectionSpec{
			BankClient: tokensv1alpha1.BankClient{
				Provider:             tokensv1alpha1.Provider(sharedBank),
				Endpoint:             d.bank.TokenURL(sharedBank),
				CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: sharedCredentialsName},
				TLS: &tokensv1alpha1.TLSConfig{CABundleRef: &tokensv1alpha1.CABundleReference{
					Kind: "ConfigMap", Name: caConfigMapName, Key: tokensv1alpha1.DefaultCABundleKey}},
			},
			AllowedNamespaces: &tokensv1alpha1.NamespaceGate{
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{admissionLabel: admittedValue}}},
			AllowedScopes: sharedScopes,
		},
	}
}

// tenantRequest is t's BankTokenRequest: the connection, a scope and an output Secret.
func tenantRequest(t tenant) *tokensv1alpha1.BankTokenRequest {
	return &tokensv1alpha1.BankTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: t.request, Namespace: t.namespace},
		Spec: tokensv1alpha1.BankTokenRequestSpec{
			ConnectionRef: &tokensv1alpha1.ConnectionReference{
				Kind: tokensv1alpha1.KindClusterBankConnection, Name: sharedConnectionName},
			Scope:      t.scope,
			SecretName: t.secretName(),
		},
	}
}

// applyTenantRequests creates one request through the connection in each tenant namespace.
func (d *demo) applyTenantRequests(ctx context.Context) error {
	var names []string
	for _, t := range tenants {
		if err := d.k8s.Create(ctx, tenantRequest(t)); err != nil {
			return fmt.Errorf("creating BankTokenRequest %s: %w", t, err)
		}
		names = append(names, t.String())
	}
	say("created %d BankTokenRequests through ClusterBankConnection %s: %s",
		len(names), sharedConnectionName, strings.Join(names, ", "))
	return nil
}
