package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// The objects of the connection run: N requests spread over a few tenant namespaces, with
// either a credentials Secret each beside them (inline) or one ClusterBankConnection whose
// Secret lives only in the cluster connection namespace.

const (
	// connectionSecretsNamespace is the manager's --cluster-connection-namespace: the only
	// place a ClusterBankConnection's Secrets are read from.
	connectionSecretsNamespace = "bench-connections"
	benchConnectionName        = "bench-bank"
	benchConnectionCredentials = "bench-bank-client"
	// benchScope is every request's scope: one scope, so that Shared has one grant to share.
	benchScope = "accounts"
	// highBudgetCalls per highBudgetInterval is the largest budget the CRD admits, far above
	// what 1,000 requests ask for: the budget must not pace the comparison.
	highBudgetCalls    = 100000
	highBudgetInterval = time.Minute
)

// tenantNamespaces are the namespaces the requests spread over.
func tenantNamespaces(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("bench-tenant-%d", i)
	}
	return out
}

// tenantOf is the namespace of request i: round robin, so each holds N/len(tenants).
func tenantOf(tenants []string, i int) string { return tenants[i%len(tenants)] }

// credentialsSecret is a client's credentials, labelled as the opt-in for a Secret sent to
// a bank; the values are placeholders the bench bank does not check.
func credentialsSecret(namespace, name, clientID string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
			Labels: map[string]string{tokensv1alpha1.CredentialsLabel: tokensv1alpha1.CredentialsLabelValue}},
		Data: map[string][]byte{
			tokensv1alpha1.DefaultClientIDKey:     []byte(clientID),
			tokensv1alpha1.DefaultClientSecretKey: []byte("bench-client-secret"),
		},
	}
}

// createBankClients creates what the setup's requests get their client from: a credentials
// Secret per request beside it (inline), or one Secret in the cluster connection namespace
// and the ClusterBankConnection that admits the tenant namespaces by name.
func (b *bench) createBankClients(ctx context.Context, c *cluster, setup connectionSetup, tenants []string) error {
	if setup.inline() {
		return parallel(b.connN, b.createConcurrency, func(i int) error {
			return c.Client.Create(ctx, credentialsSecret(tenantOf(tenants, i), credName(i), fmt.Sprintf("client-%d", i)))
		})
	}
	if err := c.Client.Create(ctx, credentialsSecret(connectionSecretsNamespace, benchConnectionCredentials, "bench-connection")); err != nil {
		return err
	}
	return c.Client.Create(ctx, b.clusterConnection(setup, tenants))
}

// clusterConnection is the setup's ClusterBankConnection to the bench bank.
func (b *bench) clusterConnection(setup connectionSetup, tenants []string) *tokensv1alpha1.ClusterBankConnection {
	conn := &tokensv1alpha1.ClusterBankConnection{
		ObjectMeta: metav1.ObjectMeta{Name: benchConnectionName},
		Spec: tokensv1alpha1.BankConnectionSpec{
			BankClient:        b.benchBankClient(benchConnectionCredentials),
			AllowedNamespaces: &tokensv1alpha1.NamespaceGate{Names: tenants},
			AllowedScopes:     []string{benchScope},
			GrantSharing:      setup.sharing,
		},
	}
	if !setup.defaultBudget {
		calls := int32(highBudgetCalls)
		conn.Spec.CallBudget = &tokensv1alpha1.CallBudget{Calls: &calls, Interval: &metav1.Duration{Duration: highBudgetInterval}}
	}
	return conn
}

// benchBankClient is a client of the bench bank with the credentials Secret named.
func (b *bench) benchBankClient(credentials string) tokensv1alpha1.BankClient {
	return tokensv1alpha1.BankClient{
		Provider:             tokensv1alpha1.Provider("OAuth2"),
		Endpoint:             b.bank.url,
		GrantType:            tokensv1alpha1.GrantType("client_credentials"),
		CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: credentials},
	}
}

// createConnectionRequests creates the setup's N requests concurrently: names unique across
// the tenant namespaces (the observer keys by name), each with the bench's one scope.
func (b *bench) createConnectionRequests(ctx context.Context, c *cluster, setup connectionSetup, tenants []string) error {
	return parallel(b.connN, b.createConcurrency, func(i int) error {
		spec := tokensv1alpha1.BankTokenRequestSpec{Scope: benchScope}
		if setup.inline() {
			spec.BankClient = b.benchBankClient(credName(i))
		} else {
			spec.ConnectionRef = &tokensv1alpha1.ConnectionReference{Kind: tokensv1alpha1.KindClusterBankConnection, Name: benchConnectionName}
		}
		return c.Client.Create(ctx, &tokensv1alpha1.BankTokenRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: tenantOf(tenants, i), Name: btrName(i)},
			Spec:       spec,
		})
	})
}
