// Package sharding tests the operator sharded with kubernetes-controller-sharding: two
// manager binaries, each one shard of a ring, against a real kube-apiserver and a sandbox
// bank. The sharder itself does not run here (its Go module is not served by the module
// proxy this project builds from, and its webhook needs TLS and a cluster's Service): the
// test labels the objects as the sharder's protocol does (docs/scaling.md).
package sharding

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// make test runs the short run; make test-sharding a longer one.
var (
	resourcesPerShard = flag.Int("resources-per-shard", 3, "BankTokenRequests assigned to each of the two shards")
	rounds            = flag.Int("rounds", 1, "renewals each resource goes through before, and again after, one is moved")
)

// world is one control plane and one manager binary for the package's tests; each test
// starts its own manager processes with the flags it needs.
var world harness.PackageWorld

func TestMain(m *testing.M) {
	flag.Parse()
	code, err := harness.RunPackage(m, "sharding", &world)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// startShard runs the manager binary as shard name of ring, its Lease in namespace, logging
// at debug level (the token calls are read from its log); it is stopped when the test ends.
func startShard(t *testing.T, ring, name, namespace string, args ...string) *harness.ManagerProcess {
	t.Helper()
	m, err := harness.StartManagerProcess(harness.ManagerProcessOptions{
		Binary:     world.ManagerBinary,
		Kubeconfig: world.ControlPlane.Kubeconfig,
		LogPath:    filepath.Join(world.Dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".log"),
		Args: append([]string{"--controller-ring=" + ring, "--shard-name=" + name, "--leader-election-namespace=" + namespace,
			"--zap-log-level=debug", "--zap-time-encoding=rfc3339nano"}, args...),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("shard %s's log (end):\n%s", name, m.LogTail(30))
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

// startBank serves the sandbox banks for one test, bankName's tokens living lifetime; it is
// closed when the test ends.
func startBank(t *testing.T) *sandbox.Server {
	t.Helper()
	bank, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bank.Close)
	bank.SetLifetime(bankName, lifetime)
	return bank
}
