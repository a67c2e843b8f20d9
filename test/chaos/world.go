package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// world is what every scenario runs in: one control plane, one sandbox of the five banks
// (loopback only), and the manager binary, started as often as a scenario asks.
type world struct {
	runDir     string
	managerBin string
	cp         *harness.ControlPlane
	bank       *sandbox.Server
	// starts numbers manager logs; scenarios may run at once.
	starts atomic.Int32
}

func startWorld(assets, runDir, managerBin string, lifetime time.Duration) (*world, error) {
	w := &world{runDir: runDir, managerBin: managerBin}
	var err error
	w.cp, err = harness.StartControlPlane(harness.ControlPlaneOptions{
		AssetsDirectory: assets,
		KubeconfigPath:  filepath.Join(runDir, "kubeconfig"),
		KubeconfigUser:  "chaos-manager",
		// The outage scenario stops and starts kube-apiserver under the manager.
		RestartableAPIServer: true,
	})
	if err != nil {
		return nil, err
	}
	lifetimes := map[providers.Name]time.Duration{}
	for _, b := range sandbox.Banks() {
		lifetimes[b] = lifetime
	}
	bankLog, err := os.Create(filepath.Join(runDir, "sandbox-bank.log"))
	if err != nil {
		w.close()
		return nil, err
	}
	logger := log.New(bankLog, "", log.LstdFlags|log.Lmicroseconds)
	if w.bank, err = sandbox.Start(sandbox.Options{Lifetimes: lifetimes, Logf: logger.Printf}); err != nil {
		w.close()
		return nil, fmt.Errorf("starting the sandbox banks: %w", err)
	}
	return w, nil
}

func (w *world) close() {
	if w.bank != nil {
		w.bank.Close()
	}
	if err := w.cp.Stop(); err != nil {
		logf("stopping the control plane: %v", err)
	}
}

// startManager starts one more manager process, with its own log file, and extra flags.
// Tokens here live seconds, so workloads are taken to see a new Secret within a second:
// with the default two minutes, Paymob's standby chain would never be old enough to
// refresh, and the kills would hit no rotation. They are renewed every few seconds, below
// the production floor of --min-renewal-interval.
func (w *world) startManager(label string, args ...string) (*harness.ManagerProcess, error) {
	return harness.StartManagerProcess(harness.ManagerProcessOptions{
		Binary:     w.managerBin,
		Kubeconfig: w.cp.Kubeconfig,
		LogPath:    filepath.Join(w.runDir, fmt.Sprintf("manager-%03d-%s.log", w.starts.Add(1), label)),
		Args:       append([]string{"--secret-propagation-delay=1s", "--min-renewal-interval=1s"}, args...),
	})
}

// createNamespace creates a namespace for one scenario, so that scenarios share nothing.
func (w *world) createNamespace(ctx context.Context, name string) error {
	return w.cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

// applyRequest creates a BankTokenRequest named after its bank in namespace, changed by
// adjust when given. Banfico asks for an offline token, so that it holds a refresh token.
func (w *world) applyRequest(ctx context.Context, namespace string, bankName providers.Name,
	adjust func(*tokensv1alpha1.BankTokenRequest)) (*tokensv1alpha1.BankTokenRequest, error) {
	req := harness.NewSandboxRequest(w.bank, bankName, namespace, resourceName(bankName))
	if bankName == providers.Banfico {
		req.Request.Spec.Scope += " offline_access"
	}
	if adjust != nil {
		adjust(req.Request)
	}
	if err := req.Apply(ctx, w.cp.Client); err != nil {
		return nil, err
	}
	return req.Request, nil
}

func resourceName(bankName providers.Name) string {
	return "chaos-" + strings.ToLower(string(bankName))
}
