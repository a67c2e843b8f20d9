package kubectlbtr

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	internalcontroller "github.com/banktoken/bank-token-operator/internal/controller"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
	"github.com/banktoken/bank-token-operator/internal/sharding"
)

// The plugin runs against a real kube-apiserver with the operator's reconciler working in
// this process and the sandbox banks answering over TLS on loopback.
var cluster struct {
	cp         *harness.ControlPlane
	kubeconfig string
	bank       *sandbox.Server
}

func TestMain(m *testing.M) {
	os.Exit(runWithCluster(m))
}

func runWithCluster(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kubectl-btr-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cluster.cp, err = harness.StartControlPlane(harness.ControlPlaneOptions{
		KubeconfigPath: filepath.Join(dir, "kubeconfig"), KubeconfigUser: "on-call"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "control plane:", err)
		return 1
	}
	defer func() { _ = cluster.cp.Stop() }()
	cluster.kubeconfig = cluster.cp.Kubeconfig
	// Paymob's tokens outlive Mbanq's, so the two sort apart by expiry.
	cluster.bank, err = sandbox.Start(sandbox.Options{Lifetimes: map[providers.Name]time.Duration{
		providers.Paymob: 2 * time.Hour, providers.Mbanq: 20 * time.Minute}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		return 1
	}
	defer cluster.bank.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	if err := startOperator(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "operator:", err)
		return 1
	}
	return m.Run()
}

// startOperator runs the operator's reconciler as cmd/main.go wires it.
func startOperator(ctx context.Context) error {
	options := internalcontroller.ManagerOptions(cluster.cp.Client.Scheme(), nil, sharding.Shard{})
	options.Metrics = metricsserver.Options{BindAddress: "0"}
	mgr, err := ctrl.NewManager(cluster.cp.Config, options)
	if err != nil {
		return err
	}
	// The sandbox bank listens on loopback, which the endpoint guard admits only when asked.
	guard, err := providers.NewEndpointGuard(providers.EndpointRules{AllowLoopback: true})
	if err != nil {
		return err
	}
	r := internalcontroller.NewReconciler(mgr, providers.NewClient(providers.ClientOptions{Timeout: 5 * time.Second, Guard: guard}))
	r.MinRenewalInterval = time.Second
	if err := r.SetupWithManager(ctx, mgr, controller.Options{}); err != nil {
		return err
	}
	go func() { _ = mgr.Start(ctx) }()
	return nil
}

// kubectlBtr runs the plugin as `kubectl btr ARGS --kubeconfig ...` would, and returns what
// it printed and its exit code.
func kubectlBtr(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := NewCommand(genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append(args, "--kubeconfig", cluster.kubeconfig))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		errOut.WriteString(err.Error())
	}
	return out.String() + errOut.String(), ExitCode(err)
}

// readyRequest applies a sandbox bank's request in a fresh namespace and waits until it is Ready.
func readyRequest(t *testing.T, bank providers.Name, namespace, name string) *tokensv1alpha1.BankTokenRequest {
	t.Helper()
	ctx := context.Background()
	createNamespace(t, namespace)
	request := harness.NewSandboxRequest(cluster.bank, bank, namespace, name)
	if err := request.Apply(ctx, cluster.cp.Client); err != nil {
		t.Fatal(err)
	}
	btr, err := harness.WaitForReady(ctx, cluster.cp.Client, request.Request, "True", tokensv1alpha1.ReasonTokenIssued, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return btr
}

func createNamespace(t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := client.IgnoreAlreadyExists(cluster.cp.Client.Create(context.Background(), ns)); err != nil {
		t.Fatal(err)
	}
}
