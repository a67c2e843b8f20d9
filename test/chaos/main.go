// Command chaos breaks the operator's surroundings on purpose and checks that no token is
// lost and no refresh token is sent twice: the manager SIGKILLed at random moments during
// rotating refreshes, two replicas with leader election whose leader is killed,
// kube-apiserver stopped and started again, and a matrix of twelve faults at five banks.
//
// It starts etcd and kube-apiserver (envtest), the sandbox banks (internal/sandbox, on
// 127.0.0.1 only) and the manager (go build ./cmd) as real processes, and prints one report.
// Each check that fails prints a FAIL line and makes the exit status 1. Run it with
// `make chaos` (the full run) or `make chaos CHAOS_FLAGS=--short` (the run make test does).
package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

func main() {
	o := parseOptions()
	// envtest logs through controller-runtime, client-go through klog: keep the report
	// readable (a watch read cut off by its timeout is counted, not logged).
	discard := zap.New(zap.WriteTo(io.Discard))
	ctrllog.SetLogger(discard)
	klog.SetLogger(discard)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	started := time.Now()
	w, err := prepare(&o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		os.Exit(1)
	}
	r := report{seed: o.seed, runDir: w.runDir}
	var alongside chan matrixOutcome
	if o.faultsAlongside {
		alongside = make(chan matrixOutcome, 1)
		go func() { alongside <- runMatrix(ctx, w, o) }()
	}
	runRestartScenarios(ctx, w, o, &r)
	var matrix matrixOutcome
	if alongside != nil {
		matrix = <-alongside
	} else {
		matrix = runMatrix(ctx, w, o)
	}
	r.matrix, r.failures = matrix.cells, append(r.failures, matrix.failures...)
	w.close()
	r.took = time.Since(started)
	r.print(os.Stdout)
	if len(r.failures) == 0 && !o.keepLogs {
		_ = os.RemoveAll(w.runDir)
	}
	if len(r.failures) > 0 {
		os.Exit(1)
	}
}

// runRestartScenarios runs, in turn, the kills, the leader kills and the apiserver outage.
func runRestartScenarios(ctx context.Context, w *world, o options, r *report) {
	var failures []string
	if o.kills > 0 {
		r.kills, failures = runKillNine(ctx, w, o)
		r.failures = append(r.failures, failures...)
	}
	if ctx.Err() == nil && o.leaderKills > 0 {
		r.leader, failures = runLeaderKill(ctx, w, o)
		r.failures = append(r.failures, failures...)
	}
	if ctx.Err() == nil && o.outage > 0 {
		r.outage, failures = (&apiserverOutage{w: w, duration: o.outage}).run(ctx)
		r.failures = append(r.failures, failures...)
	}
}

// matrixOutcome is what the fault matrix hands back, from whichever goroutine ran it.
type matrixOutcome struct {
	cells    []matrixCell
	failures []string
}

// runMatrix runs the fault matrix at every bank, or alongside the other scenarios at the
// banks they leave alone.
func runMatrix(ctx context.Context, w *world, o options) matrixOutcome {
	faults := selectFaults(o.faults)
	if len(faults) == 0 || ctx.Err() != nil {
		return matrixOutcome{}
	}
	banks := sandbox.Banks()
	if o.faultsAlongside {
		banks = slices.DeleteFunc(banks, func(b providers.Name) bool { return slices.Contains(rotatingBanks, b) })
		// A TLS fault is the whole server's: it would break the other scenarios' banks too.
		faults = slices.DeleteFunc(faults, func(fc faultCase) bool { return fc.serverWide })
	}
	m := &faultMatrix{w: w, banks: banks, faults: faults, window: o.faultWindow}
	cells, failures := m.run(ctx)
	return matrixOutcome{cells, failures}
}

func runKillNine(ctx context.Context, w *world, o options) ([]killRow, []string) {
	logf("kill -9: %d kills of the manager during rotating refreshes (tokens live %s)", o.kills, o.lifetime)
	k := &killNine{w: w, rng: rand.New(rand.NewPCG(o.seed, 1)), kills: o.kills,
		restartWindow: o.restartWindow, lifetime: o.lifetime, answerDelay: o.answerDelay, proveChecks: o.proveChecks}
	return k.run(ctx)
}

// runLeaderKill gives tokens 10s with renewBefore 6s: a renewed token outlives a takeover.
func runLeaderKill(ctx context.Context, w *world, o options) (leaderResult, []string) {
	logf("leader election: %d kills of the leader of two replicas (lease %s)", o.leaderKills, o.leaderLease)
	l := &leaderKill{w: w, rng: rand.New(rand.NewPCG(o.seed, 2)), kills: o.leaderKills,
		lease: o.leaderLease, renewDeadline: o.leaderLease * 2 / 3, retry: o.leaderLease / 6,
		lifetime: 10 * time.Second, renewBefore: 6 * time.Second}
	return l.run(ctx)
}

// prepare builds the manager if asked to and starts the world in a fresh run directory.
func prepare(o *options) (*world, error) {
	if o.assets == "" {
		return nil, fmt.Errorf("no control plane: set KUBEBUILDER_ASSETS or --assets (make chaos does it)")
	}
	root, err := harness.RepoRoot()
	if err != nil {
		return nil, err
	}
	if o.manager == "" {
		// Not bin/manager: make demo in another checkout sharing bin/ may be running that one.
		o.manager = filepath.Join(root, "bin", "chaos", "manager")
		logf("building the manager: go build -o bin/chaos/manager ./cmd")
		if err := harness.BuildManager(root, o.manager); err != nil {
			return nil, err
		}
	}
	runDir, err := os.MkdirTemp("", "bank-token-chaos-")
	if err != nil {
		return nil, err
	}
	logf("run directory (manager and bank logs): %s", runDir)
	return startWorld(o.assets, runDir, o.manager, o.lifetime)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "chaos %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
