package kubectlbtr

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// The connections' status is the operator's to write, so the cluster tests below check what
// comes from specs and requests; the table's status columns are checked on a fixed report.

func TestConnectionsGroupTheRequestsByTheConnectionTheyName(t *testing.T) {
	applyConnectionsWorld(t)
	out, code := kubectlBtr(t, "connections", "-o", "json")
	report := &connectionsReport{}
	if err := json.Unmarshal([]byte(out), report); code != ExitOK || err != nil {
		t.Fatalf("connections -o json: exit %d, %v: %s", code, err, out)
	}
	want := map[string][]string{
		"ClusterBankConnection /conn-shared-banfico": {"conn-payments/accounts", "conn-treasury/payments"},
		"BankConnection conn-payments/team-paymob":   {"conn-payments/reports"},
		"BankConnection conn-treasury/unused-paymob": {},
	}
	for _, c := range report.Connections {
		key := c.Kind + " " + c.Namespace + "/" + c.Name
		if users, ok := want[key]; ok && !slices.Equal(c.UsedBy, users) {
			t.Errorf("%s used by %v, want %v", key, c.UsedBy, users)
		}
		delete(want, key)
	}
	if len(want) > 0 {
		t.Errorf("connections missing from the report: %v", want)
	}
	if !slices.ContainsFunc(report.MissingConnections, func(m missingConnection) bool {
		return m.Request == "conn-treasury/orphan" && m.Connection.Name == "absent"
	}) {
		t.Errorf("conn-treasury/orphan names a BankConnection that does not exist; report: %+v", report.MissingConnections)
	}

	table, _ := kubectlBtr(t, "connections")
	for _, want := range []string{"PAUSED UNTIL", "conn-shared-banfico", "Banfico", "conn-payments/accounts,conn-treasury/payments",
		"-/30 per 1m", "Shared", "conn-treasury/orphan -> BankConnection absent"} {
		if !strings.Contains(table, want) {
			t.Errorf("connections table lacks %q:\n%s", want, table)
		}
	}
}

func TestConnectionsOfANamespaceShowOnlyItsRequests(t *testing.T) {
	applyConnectionsWorld(t)
	out, code := kubectlBtr(t, "connections", "-n", "conn-payments", "-o", "json")
	report := &connectionsReport{}
	if err := json.Unmarshal([]byte(out), report); code != ExitOK || err != nil {
		t.Fatalf("connections -n conn-payments: exit %d, %v: %s", code, err, out)
	}
	for _, c := range report.Connections {
		if c.Kind == tokensv1alpha1.KindBankConnection && c.Namespace != "conn-payments" {
			t.Errorf("a BankConnection of %s is shown", c.Namespace)
		}
		if c.Name == "conn-shared-banfico" && !slices.Equal(c.UsedBy, []string{"conn-payments/accounts"}) {
			t.Errorf("the ClusterBankConnection is used by %v in conn-payments", c.UsedBy)
		}
	}
}

// A tenant who may read its namespace's requests and connections, but not the cluster's
// connections, still gets its own, and is told what is left out.
func TestConnectionsForATenantWhoMayNotListClusterConnections(t *testing.T) {
	applyConnectionsWorld(t)
	kubeconfig := tenantKubeconfig(t, "conn-payments")
	var out, errOut bytes.Buffer
	// The authorizer follows RBAC through an informer: the first tries may be refused.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out.Reset()
		errOut.Reset()
		cmd := NewCommand(genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut})
		cmd.SetArgs([]string{"connections", "-n", "conn-payments", "--kubeconfig", kubeconfig})
		err := cmd.ExecuteContext(context.Background())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections as a tenant: %v\n%s", err, errOut.String())
		}
	}
	// The ClusterBankConnection it uses is not shown, nor reported missing: it was not listed.
	if !strings.Contains(out.String(), "team-paymob") || strings.Contains(out.String(), "conn-shared-banfico") {
		t.Errorf("a tenant's connections:\n%s\nstderr: %s", out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "may not list ClusterBankConnections") {
		t.Errorf("no note on what is left out: %q", errOut.String())
	}
}

func TestConnectionsTableShowsReadinessBudgetAndPause(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	paused := metav1.NewTime(now.Add(45 * time.Second))
	shared := tokensv1alpha1.ClusterBankConnection{ObjectMeta: metav1.ObjectMeta{Name: "shared"},
		Spec: tokensv1alpha1.BankConnectionSpec{BankClient: tokensv1alpha1.BankClient{Provider: tokensv1alpha1.ProviderBanfico}},
		Status: tokensv1alpha1.BankConnectionStatus{Requests: 5, RefusedRequests: 1,
			Conditions: []metav1.Condition{{Type: tokensv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "RateLimited"}},
			Budget:     &tokensv1alpha1.CallBudgetStatus{Calls: 30, Limit: 30, Interval: metav1.Duration{Duration: time.Hour}, PausedUntil: &paused}}}
	var requests []tokensv1alpha1.BankTokenRequest
	for _, name := range []string{"a/one", "b/two", "c/three", "d/four", "e/five"} {
		namespace, request, _ := strings.Cut(name, "/")
		requests = append(requests, tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: request},
			Spec: tokensv1alpha1.BankTokenRequestSpec{ConnectionRef: &tokensv1alpha1.ConnectionReference{Kind: tokensv1alpha1.KindClusterBankConnection, Name: "shared"}}})
	}
	var out strings.Builder
	printConnections(&out, groupByConnection(requests, nil, []tokensv1alpha1.ClusterBankConnection{shared}), now)
	for _, want := range []string{"False", "RateLimited", "5 (1 refused)", "30/30 per 1h", "in 45s", "a/one,b/two,c/three (+2 more)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// applyConnectionsWorld applies, once, a ClusterBankConnection used from two namespaces, a
// BankConnection used by one request of its namespace, an unused one, and a request naming
// a BankConnection that does not exist.
func applyConnectionsWorld(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, ns := range []string{"conn-payments", "conn-treasury"} {
		createNamespace(t, ns)
	}
	paymob := tokensv1alpha1.BankClient{Provider: tokensv1alpha1.ProviderPaymob, Endpoint: "https://payouts.example/api/secure/o/token/",
		CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: "paymob-credentials"}}
	objects := []client.Object{
		&tokensv1alpha1.ClusterBankConnection{ObjectMeta: metav1.ObjectMeta{Name: "conn-shared-banfico"},
			Spec: tokensv1alpha1.BankConnectionSpec{BankClient: tokensv1alpha1.BankClient{Provider: tokensv1alpha1.ProviderBanfico,
				Endpoint: "https://banfico.example/token", CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: "banfico"}},
				AllowedNamespaces: &tokensv1alpha1.NamespaceGate{Names: []string{"conn-payments", "conn-treasury"}},
				CallBudget:        &tokensv1alpha1.CallBudget{Calls: ptr.To[int32](30)}}},
		&tokensv1alpha1.BankConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "conn-payments", Name: "team-paymob"},
			Spec: tokensv1alpha1.BankConnectionSpec{BankClient: paymob, GrantSharing: tokensv1alpha1.GrantSharingShared}},
		&tokensv1alpha1.BankConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "conn-treasury", Name: "unused-paymob"},
			Spec: tokensv1alpha1.BankConnectionSpec{BankClient: paymob}},
		requestThrough("conn-payments", "accounts", tokensv1alpha1.KindClusterBankConnection, "conn-shared-banfico"),
		requestThrough("conn-treasury", "payments", tokensv1alpha1.KindClusterBankConnection, "conn-shared-banfico"),
		requestThrough("conn-payments", "reports", tokensv1alpha1.KindBankConnection, "team-paymob"),
		requestThrough("conn-treasury", "orphan", tokensv1alpha1.KindBankConnection, "absent"),
	}
	for _, o := range objects {
		if err := client.IgnoreAlreadyExists(cluster.cp.Client.Create(ctx, o)); err != nil {
			t.Fatalf("creating %s: %v", o.GetName(), err)
		}
	}
}

func requestThrough(namespace, name, kind, connection string) *tokensv1alpha1.BankTokenRequest {
	return &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: tokensv1alpha1.BankTokenRequestSpec{Scope: "read",
			ConnectionRef: &tokensv1alpha1.ConnectionReference{Kind: kind, Name: connection}}}
}

// tenantKubeconfig is a kubeconfig of a user who may read the requests and connections of
// namespace, and nothing cluster-wide.
func tenantKubeconfig(t *testing.T, namespace string) string {
	t.Helper()
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "tenant-reader"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{tokensv1alpha1.GroupVersion.Group},
			Resources: []string{"banktokenrequests", "bankconnections"}, Verbs: []string{"get", "list"}}}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "tenant-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "tenant"}}}
	for _, o := range []client.Object{role, binding} {
		if err := client.IgnoreAlreadyExists(cluster.cp.Client.Create(ctx, o)); err != nil {
			t.Fatal(err)
		}
	}
	user, err := cluster.cp.Env.AddUser(envtest.User{Name: "tenant"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConnectionsCountSharedGrantHoldersApartFromTheRequestsThatUseThem(t *testing.T) {
	through := func(namespace, name string, labels map[string]string) tokensv1alpha1.BankTokenRequest {
		return tokensv1alpha1.BankTokenRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
			Spec: tokensv1alpha1.BankTokenRequestSpec{ConnectionRef: &tokensv1alpha1.ConnectionReference{
				Kind: tokensv1alpha1.KindClusterBankConnection, Name: "bank"}},
		}
	}
	holder := map[string]string{tokensv1alpha1.SharedGrantLabel: tokensv1alpha1.SharedGrantLabelValue}
	report := groupByConnection([]tokensv1alpha1.BankTokenRequest{
		through("team-a", "accounts", nil), through("team-b", "accounts", nil),
		through("bank-token-operator-system", "bank-shared-0a1b2c3d", holder),
	}, nil, []tokensv1alpha1.ClusterBankConnection{{ObjectMeta: metav1.ObjectMeta{Name: "bank"}}})

	c := report.Connections[0]
	if !slices.Equal(c.UsedBy, []string{"team-a/accounts", "team-b/accounts"}) ||
		!slices.Equal(c.SharedGrants, []string{"bank-token-operator-system/bank-shared-0a1b2c3d"}) {
		t.Errorf("used by %v, shared grants %v", c.UsedBy, c.SharedGrants)
	}
	if got := usedBy(&c); got != "team-a/accounts,team-b/accounts (1 shared grant)" {
		t.Errorf("USED BY column %q", got)
	}
}
