package install

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// What the operator's ServiceAccount must not be able to do, asked of the real apiserver's
// authorizer with `kubectl auth can-i --as`, with the RBAC the operator ships applied.
// Each list also holds what it must be able to do, so that a test whose every answer is
// "no" (a broken kubeconfig, a missing binding) cannot pass.

type canI struct {
	args []string // verb, resource and flags, as kubectl auth can-i takes them
	want bool
}

func TestShippedClusterRoleDeniesWhatTheOperatorDoesNotNeed(t *testing.T) {
	installShippedRBAC(t)
	ensureNamespace(context.Background(), t, apiServer(t), "tenant-a", nil)
	expectCanI(t, []canI{
		// What it needs.
		{[]string{"get", "secrets", "-n", "tenant-a"}, true},
		{[]string{"create", "secrets", "-n", "tenant-a"}, true},
		{[]string{"list", "secrets", "--all-namespaces"}, true}, // the owned Secrets' cache, by label
		{[]string{"get", "services/kubernetes", "-n", "default"}, true},
		{[]string{"get", "endpointslices.discovery.k8s.io/kubernetes", "-n", "default"}, true},
		{[]string{"patch", "banktokenrequests.tokens.banktoken.io", "--subresource=status", "-n", "tenant-a"}, true},
		// What it must not do.
		{[]string{"delete", "secrets", "-n", "tenant-a"}, false},
		{[]string{"deletecollection", "secrets", "-n", "tenant-a"}, false},
		{[]string{"delete", "secrets", "--all-namespaces"}, false},
		{[]string{"get", "services/other", "-n", "default"}, false},
		{[]string{"list", "services", "-n", "default"}, false},
		{[]string{"update", "services/kubernetes", "-n", "default"}, false},
		{[]string{"list", "endpointslices.discovery.k8s.io", "--all-namespaces"}, false},
		{[]string{"get", "endpointslices.discovery.k8s.io/other", "-n", "default"}, false},
		{[]string{"create", "configmaps", "-n", "tenant-a"}, false},
		{[]string{"update", "configmaps", "-n", "tenant-a"}, false},
		// Only to add and remove the finalizer that revokes a resource's grants at the bank.
		{[]string{"patch", "banktokenrequests.tokens.banktoken.io", "-n", "tenant-a"}, true},
		// Only the holders of shared grants, which it creates beside their connection's Secrets
		// (a BankConnection's are in its tenant's namespace) and deletes once no request reads
		// them; RBAC cannot tell a holder by its label. It adds nothing to what patch and the
		// Secrets' update already allow (a deleted request's token goes; an emptied Secret's
		// too), and it never deletes a collection.
		{[]string{"create", "banktokenrequests.tokens.banktoken.io", "-n", "tenant-a"}, true},
		{[]string{"delete", "banktokenrequests.tokens.banktoken.io", "-n", "tenant-a"}, true},
		{[]string{"deletecollection", "banktokenrequests.tokens.banktoken.io", "-n", "tenant-a"}, false},
		{[]string{"create", "serviceaccounts", "--subresource=token", "-n", "tenant-a"}, false},
		{[]string{"create", "pods", "-n", "tenant-a"}, false},
		{[]string{"get", "nodes"}, false},
		{[]string{"escalate", "clusterroles"}, false},
		{[]string{"bind", "clusterroles"}, false},
		{[]string{"impersonate", "serviceaccounts"}, false},
	})
}

func TestNamespacedInstallDeniesEverythingOutsideTheWatchedNamespaces(t *testing.T) {
	ctx := context.Background()
	admin := apiServer(t)
	for _, ns := range append([]string{operatorNamespace, "tenant-b"}, watchedNamespaces...) {
		ensureNamespace(ctx, t, admin, ns, nil)
	}
	// The cluster-wide binding other tests install would answer for the Roles.
	deleteManagerClusterRoleBinding(ctx, t, admin)
	var install []*unstructured.Unstructured
	for _, o := range decodeObjects(t, kustomizeBuild(t, "config/namespaced")) {
		switch o.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			install = append(install, o)
		}
	}
	applyForReal(ctx, t, admin, install)
	t.Cleanup(func() {
		for _, o := range install {
			if o.GetKind() == "Role" || o.GetKind() == "RoleBinding" {
				_ = admin.Delete(ctx, o.DeepCopy())
			}
		}
	})
	expectCanI(t, []canI{
		// What it needs, in a watched namespace and its own.
		{[]string{"get", "secrets", "-n", "payments"}, true},
		{[]string{"list", "secrets", "-n", "treasury"}, true},
		{[]string{"patch", "banktokenrequests.tokens.banktoken.io", "--subresource=status", "-n", "payments"}, true},
		{[]string{"update", "leases.coordination.k8s.io", "-n", operatorNamespace}, true},
		// Nothing elsewhere, and nothing cluster-wide.
		{[]string{"list", "secrets", "--all-namespaces"}, false},
		{[]string{"get", "secrets", "-n", "tenant-b"}, false},
		{[]string{"list", "secrets", "-n", "tenant-b"}, false},
		{[]string{"watch", "configmaps", "-n", "tenant-b"}, false},
		{[]string{"get", "banktokenrequests.tokens.banktoken.io", "-n", "tenant-b"}, false},
		{[]string{"create", "events.events.k8s.io", "-n", "tenant-b"}, false},
		{[]string{"get", "secrets", "-n", "kube-system"}, false},
		{[]string{"get", "services/kubernetes", "-n", "default"}, false},
		{[]string{"list", "banktokenrequests.tokens.banktoken.io", "--all-namespaces"}, false},
		{[]string{"delete", "secrets", "-n", "payments"}, false},
	})
}

// expectCanI asks kubectl auth can-i, as the manager's ServiceAccount, each question.
func expectCanI(t *testing.T, questions []canI) {
	t.Helper()
	expectUserCanI(t, managerServiceAccount, questions)
}

// expectUserCanI asks kubectl auth can-i, as user, each question.
func expectUserCanI(t *testing.T, user string, questions []canI) {
	t.Helper()
	kubeconfig := writeAdminKubeconfig(t)
	for _, q := range questions {
		answer, err := askCanI(t, kubeconfig, user, q.args)
		if answer != "yes" && answer != "no" {
			t.Fatalf("kubectl auth can-i %s: no answer: %v", strings.Join(q.args, " "), err)
		}
		if got := answer == "yes"; got != q.want {
			t.Errorf("%s can %s: %v, want %v", user, strings.Join(q.args, " "), got, q.want)
		}
	}
}

// askCanI is kubectl auth can-i ARGS --as user: "yes", "no", or something else with an error.
func askCanI(t *testing.T, kubeconfig, user string, args []string) (string, error) {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatalf("kubectl is not on the PATH: %v", err)
	}
	out, err := tryRun(kubectl, append([]string{"--kubeconfig", kubeconfig, "auth", "can-i", "--as", user}, args...)...)
	return strings.TrimSpace(string(out)), err
}

// writeAdminKubeconfig writes the shared control plane's admin credentials for kubectl.
func writeAdminKubeconfig(t *testing.T) string {
	t.Helper()
	apiServer(t)
	cfg := controlPlane.running.Config
	kubeconfig := clientcmdapi.NewConfig()
	kubeconfig.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kubeconfig.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kubeconfig.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	kubeconfig.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kubeconfig, path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func deleteManagerClusterRoleBinding(ctx context.Context, t *testing.T, admin client.Client) {
	t.Helper()
	binding := &unstructured.Unstructured{}
	binding.SetAPIVersion("rbac.authorization.k8s.io/v1")
	binding.SetKind("ClusterRoleBinding")
	binding.SetName("bank-token-operator-manager-rolebinding")
	if err := admin.Delete(ctx, binding); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
}
