// Package sharedcluster tests what makes the operator safe in a cluster that many teams
// share, with the real manager binary against a real kube-apiserver: one namespace's hung
// endpoints do not delay another namespace's renewals, and the metrics endpoint serves only
// callers the apiserver authenticates and authorizes.
package sharedcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banktoken/bank-token-operator/internal/harness"
)

// world is one control plane and one manager binary for the package's tests; each test
// starts its own manager processes with the flags it needs.
var world harness.PackageWorld

func TestMain(m *testing.M) {
	code, err := harness.RunPackage(m, "sharedcluster", &world)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// startManager runs the manager binary with args beyond the harness's own; it is stopped
// when the test ends, and its log is printed when the test failed.
func startManager(t *testing.T, args ...string) *harness.ManagerProcess {
	t.Helper()
	m, err := harness.StartManagerProcess(harness.ManagerProcessOptions{
		Binary:     world.ManagerBinary,
		Kubeconfig: world.ControlPlane.Kubeconfig,
		LogPath:    filepath.Join(world.Dir, strings.ReplaceAll(t.Name(), "/", "_")+"-manager.log"), // subtests' names hold a slash
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
