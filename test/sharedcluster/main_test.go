// Package sharedcluster tests what makes the operator safe in a cluster that many teams
// share, with the real manager binary against a real kube-apiserver: one namespace's hung
// endpoints do not delay another namespace's renewals, and the metrics endpoint serves only
// callers the apiserver authenticates and authorizes.
package sharedcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banktoken/bank-token-operator/internal/harness"
)

// world is one control plane and one manager binary for the package's tests; each test
// starts its own manager process with the flags it needs.
var world struct {
	cp         *harness.ControlPlane
	managerBin string
	dir        string
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return 1, errors.New("KUBEBUILDER_ASSETS is not set: run `make test`, or `make setup-envtest` and export what it prints")
	}
	dir, err := os.MkdirTemp("", "bank-token-sharedcluster-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	world.dir = dir
	root, err := harness.RepoRoot()
	if err != nil {
		return 1, err
	}
	// Not bin/manager: bin/ may be shared with other checkouts running make demo.
	world.managerBin = filepath.Join(dir, "manager")
	if err := harness.BuildManager(root, world.managerBin); err != nil {
		return 1, fmt.Errorf("building the manager: %w", err)
	}
	world.cp, err = harness.StartControlPlane(harness.ControlPlaneOptions{
		KubeconfigPath: filepath.Join(dir, "kubeconfig"),
		KubeconfigUser: "sharedcluster-manager",
	})
	if err != nil {
		return 1, err
	}
	defer func() {
		if err := world.cp.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
		}
	}()
	return m.Run(), nil
}

// startManager runs the manager binary with args beyond the harness's own; it is stopped
// when the test ends, and its log is printed when the test failed.
func startManager(t *testing.T, args ...string) *harness.ManagerProcess {
	t.Helper()
	m, err := harness.StartManagerProcess(harness.ManagerProcessOptions{
		Binary:     world.managerBin,
		Kubeconfig: world.cp.Kubeconfig,
		LogPath:    filepath.Join(world.dir, strings.ReplaceAll(t.Name(), "/", "_")+"-manager.log"), // subtests' names hold a slash
		Args:       args,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("manager log (end):\n%s", m.LogTail(40))
		}
		if err := m.Stop(60 * time.Second); err != nil {
			t.Error(err)
		}
	})
	if err := m.WaitStarted(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	return m
}
