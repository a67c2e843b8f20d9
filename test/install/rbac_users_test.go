package install

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// What people may do with the ClusterRoles the operator ships for them, asked of the real
// apiserver's authorizer: namespace teams create BankTokenRequests and BankConnections in
// their namespace and may see ClusterBankConnections, but nothing lets them read the
// Secrets a ClusterBankConnection keeps in the operator's namespace; editing
// ClusterBankConnections is the platform team's alone.

const (
	tenantNamespace      = "tenant-a"
	otherTenantNamespace = "tenant-b"
	// tenant has the built-in edit role in tenant-a and the ClusterBankConnection viewer role.
	tenant = "tenant-a-developer"
	// namespaceAdmin has the built-in admin role in tenant-a.
	namespaceAdmin = "tenant-a-admin"
	// platformEngineer has the ClusterBankConnection editor role.
	platformEngineer = "platform-engineer"
	// clusterEditor has the built-in edit role cluster-wide.
	clusterEditor = "cluster-editor"
)

func TestTenantsUseConnectionsButCannotReadTheClusterConnectionSecrets(t *testing.T) {
	installUserRoles(t)
	expectUserCanI(t, tenant, []canI{
		// What a namespace team needs, in its namespace (and its own Secrets: the control
		// that Secret answers can be yes).
		{[]string{"create", "banktokenrequests.tokens.banktoken.io", "-n", tenantNamespace}, true},
		{[]string{"create", "bankconnections.tokens.banktoken.io", "-n", tenantNamespace}, true},
		{[]string{"update", "bankconnections.tokens.banktoken.io", "-n", tenantNamespace}, true},
		{[]string{"get", "secrets", "-n", tenantNamespace}, true},
		{[]string{"get", "clusterbankconnections.tokens.banktoken.io"}, true},
		{[]string{"list", "clusterbankconnections.tokens.banktoken.io"}, true},
		// Never the Secrets of the operator's namespace, where a ClusterBankConnection's live.
		{[]string{"get", "secrets", "-n", operatorNamespace}, false},
		{[]string{"list", "secrets", "-n", operatorNamespace}, false},
		{[]string{"watch", "secrets", "-n", operatorNamespace}, false},
		{[]string{"list", "secrets", "--all-namespaces"}, false},
		{[]string{"create", "secrets", "-n", operatorNamespace}, false},
		// Nor the connections themselves, their status, or another namespace.
		{[]string{"create", "clusterbankconnections.tokens.banktoken.io"}, false},
		{[]string{"patch", "clusterbankconnections.tokens.banktoken.io"}, false},
		{[]string{"delete", "clusterbankconnections.tokens.banktoken.io"}, false},
		{[]string{"patch", "clusterbankconnections.tokens.banktoken.io", "--subresource=status"}, false},
		{[]string{"patch", "bankconnections.tokens.banktoken.io", "--subresource=status", "-n", tenantNamespace}, false},
		{[]string{"create", "bankconnections.tokens.banktoken.io", "-n", otherTenantNamespace}, false},
		{[]string{"get", "banktokenrequests.tokens.banktoken.io", "-n", otherTenantNamespace}, false},
	})
	expectUserCanI(t, namespaceAdmin, []canI{
		{[]string{"delete", "bankconnections.tokens.banktoken.io", "-n", tenantNamespace}, true},
		{[]string{"create", "clusterbankconnections.tokens.banktoken.io"}, false},
		{[]string{"get", "secrets", "-n", operatorNamespace}, false},
	})
}

func TestOnlyThePlatformTeamEditsClusterBankConnections(t *testing.T) {
	installUserRoles(t)
	expectUserCanI(t, platformEngineer, []canI{
		{[]string{"create", "clusterbankconnections.tokens.banktoken.io"}, true},
		{[]string{"update", "clusterbankconnections.tokens.banktoken.io"}, true},
		{[]string{"delete", "clusterbankconnections.tokens.banktoken.io"}, true},
		// The status is the operator's; the Secrets need a Role of their own.
		{[]string{"patch", "clusterbankconnections.tokens.banktoken.io", "--subresource=status"}, false},
		{[]string{"get", "secrets", "-n", operatorNamespace}, false},
	})
	// The built-in edit role, even bound cluster-wide, edits namespaced connections only.
	expectUserCanI(t, clusterEditor, []canI{
		{[]string{"create", "bankconnections.tokens.banktoken.io", "-n", otherTenantNamespace}, true},
		{[]string{"get", "clusterbankconnections.tokens.banktoken.io"}, true},
		{[]string{"create", "clusterbankconnections.tokens.banktoken.io"}, false},
		{[]string{"update", "clusterbankconnections.tokens.banktoken.io"}, false},
		{[]string{"delete", "clusterbankconnections.tokens.banktoken.io"}, false},
	})
}

// The chart ships the same roles for people as dist/install.yaml: the same rules, and the
// same aggregation into the built-in roles.
func TestChartShipsTheUserRolesOfInstallYAML(t *testing.T) {
	chart := decodeObjects(t, helmTemplate(t))
	roles := objectsOfKind(decodeObjects(t, readRepoFile(t, "dist/install.yaml")), "ClusterRole")
	if len(roles) < 8 {
		t.Fatalf("dist/install.yaml has only %d ClusterRoles", len(roles))
	}
	for _, role := range roles {
		chartRole := findObject(t, chart, "ClusterRole", role.GetName())
		if got, want := rulesOf(t, chartRole), rulesOf(t, role); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the chart's rules differ\n chart:        %v\n install.yaml: %v", role.GetName(), got, want)
		}
		if got, want := aggregationLabels(chartRole.GetLabels()), aggregationLabels(role.GetLabels()); !slices.Equal(got, want) {
			t.Errorf("%s: the chart aggregates it into %v, dist/install.yaml into %v", role.GetName(), got, want)
		}
	}
}

func aggregationLabels(roleLabels map[string]string) []string {
	var aggregated []string
	for key, value := range roleLabels {
		if strings.HasPrefix(key, "rbac.authorization.k8s.io/aggregate-to-") && value == "true" {
			aggregated = append(aggregated, strings.TrimPrefix(key, "rbac.authorization.k8s.io/aggregate-to-"))
		}
	}
	slices.Sort(aggregated)
	return aggregated
}

// installUserRoles installs dist/install.yaml's CRDs and ClusterRoles, aggregates them into
// the built-in roles, and binds each user of this file as its name says.
func installUserRoles(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	installShippedRBAC(t)
	admin := controlPlane.running.Client
	for _, ns := range []string{operatorNamespace, tenantNamespace, otherTenantNamespace} {
		ensureNamespace(ctx, t, admin, ns, nil)
	}
	aggregateClusterRoles(ctx, t, admin)
	bindings := []client.Object{
		roleBinding(tenantNamespace, tenant, "edit"),
		clusterRoleBinding(tenant, "bank-token-operator-clusterbankconnection-viewer-role"),
		roleBinding(tenantNamespace, namespaceAdmin, "admin"),
		clusterRoleBinding(platformEngineer, "bank-token-operator-clusterbankconnection-editor-role"),
		clusterRoleBinding(clusterEditor, "edit"),
	}
	for _, binding := range bindings {
		if err := admin.Create(ctx, binding); client.IgnoreAlreadyExists(err) != nil {
			t.Fatalf("binding %s: %v", binding.GetName(), err)
		}
	}
	// The authorizer follows RBAC through an informer: wait until the last binding counts.
	waitUntilUserCanI(t, clusterEditor, "create", "bankconnections.tokens.banktoken.io", "-n", otherTenantNamespace)
}

// aggregateClusterRoles does what kube-controller-manager's clusterrole-aggregation
// controller does, which envtest does not run: every ClusterRole with an aggregationRule gets
// the rules of the ClusterRoles its selectors match. Built-in roles aggregate each other
// (view into edit into admin), so it repeats until nothing changes.
func aggregateClusterRoles(ctx context.Context, t *testing.T, c client.Client) {
	t.Helper()
	for range 5 {
		roles := &rbacv1.ClusterRoleList{}
		must(t, c.List(ctx, roles))
		changed := false
		for i := range roles.Items {
			role := &roles.Items[i]
			if role.AggregationRule == nil {
				continue
			}
			rules := aggregatedRules(t, role, roles.Items)
			if reflect.DeepEqual(rules, role.Rules) {
				continue
			}
			role.Rules, changed = rules, true
			must(t, c.Update(ctx, role))
		}
		if !changed {
			return
		}
	}
	t.Fatal("the ClusterRole aggregation did not settle")
}

// aggregatedRules is the union of the rules of the roles that role's selectors match, in the
// order of their names, as the aggregation controller makes it.
func aggregatedRules(t *testing.T, role *rbacv1.ClusterRole, all []rbacv1.ClusterRole) []rbacv1.PolicyRule {
	t.Helper()
	var rules []rbacv1.PolicyRule
	for _, selector := range role.AggregationRule.ClusterRoleSelectors {
		matches, err := metav1.LabelSelectorAsSelector(&selector)
		must(t, err)
		for _, other := range all {
			if other.Name == role.Name || !matches.Matches(labels.Set(other.Labels)) {
				continue
			}
			for _, rule := range other.Rules {
				if !slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool { return reflect.DeepEqual(r, rule) }) {
					rules = append(rules, rule)
				}
			}
		}
	}
	return rules
}

func roleBinding(namespace, user, clusterRole string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user + "-" + clusterRole, Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
}

func clusterRoleBinding(user, clusterRole string) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user + "-" + clusterRole},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
}

func waitUntilUserCanI(t *testing.T, user string, args ...string) {
	t.Helper()
	kubeconfig := writeAdminKubeconfig(t)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if answer, _ := askCanI(t, kubeconfig, user, args); answer == "yes" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still cannot %s after 10s: the bindings did not take effect", user, strings.Join(args, " "))
		}
	}
}
