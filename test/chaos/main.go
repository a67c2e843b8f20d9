// Command chaos breaks the operator's surroundings on purpose and checks that no token is
// lost and no refresh token is sent twice: the manager SIGKILLed at random moments during
// rotating refreshes, two replicas with leader election whose leader is killed, and
// kube-apiserver stopped and started again.
//
// It starts etcd and kube-apiserver (envtest), the sandbox banks (internal/sandbox, on
// 127.0.0.1 only) and the manager (go build ./cmd) as real processes, and prints one report.
// Each check that fails prints a FAIL line and makes the exit status 1. Run it with
// `make chaos` (the full run) or `make chaos CHAOS_FLAGS=--short` (the run make test does).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// options are the run's knobs; --short picks the make test sizes.
type options struct {
	assets, manager string
	seed            uint64
	kills           int
	leaderKills     int
	leaderLease     time.Duration
	outage          time.Duration
	faults          string
	faultWindow     time.Duration
	lifetime        time.Duration
	answerDelay     time.Duration
	restartWindow   time.Duration
	keepLogs        bool
}

func parseOptions() options {
	var o options
	short := flag.Bool("short", false, "The short run of make test: 8 kills, 3 leader kills, no apiserver outage.")
	flag.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "Directory with etcd and kube-apiserver (default $KUBEBUILDER_ASSETS).")
	flag.StringVar(&o.manager, "manager", "", "A prebuilt manager binary; default: go build ./cmd into bin/chaos/manager.")
	flag.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "Seed of the kill moments; the report prints it, to repeat a run.")
	flag.IntVar(&o.kills, "kills", 100, "SIGKILLs of the manager during rotating refreshes.")
	flag.IntVar(&o.leaderKills, "leader-kills", 20, "SIGKILLs of the leader of two replicas.")
	flag.DurationVar(&o.leaderLease, "leader-lease", 3*time.Second, "Leader election lease duration of the two replicas (renew deadline 2/3 of it, retry period 1/6).")
	flag.DurationVar(&o.lifetime, "token-lifetime", 4*time.Second, "Access token lifetime at the sandbox banks in the kill -9 scenario.")
	flag.DurationVar(&o.answerDelay, "answer-delay", 300*time.Millisecond, "How long the banks hold each answer, so that kills land mid-call.")
	flag.DurationVar(&o.restartWindow, "restart-window", 10*time.Second, "How soon after a restart the output Secret must hold an accepted token.")
	flag.DurationVar(&o.outage, "apiserver-outage", 30*time.Second, "How long kube-apiserver is stopped in the outage scenario; 0 skips it.")
	flag.StringVar(&o.faults, "faults", "all", "Faults of the matrix, comma-separated names as the report prints them, \"all\" or \"none\".")
	flag.DurationVar(&o.faultWindow, "fault-window", 12*time.Second, "How long each fault of the matrix stays on.")
	flag.BoolVar(&o.keepLogs, "keep-logs", false, "Keep the run directory (manager and bank logs) even when every check passes.")
	flag.Parse()
	if *short {
		o.kills, o.leaderKills, o.outage, o.faults = min(o.kills, 8), min(o.leaderKills, 3), 0, "none"
	}
	return o
}

func main() {
	o := parseOptions()
	// envtest logs through controller-runtime: keep the report readable.
	ctrllog.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	started := time.Now()
	w, err := prepare(&o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		os.Exit(1)
	}
	r := report{seed: o.seed, runDir: w.runDir}
	if o.kills > 0 {
		r.kills, r.failures = runKillNine(ctx, w, o)
	}
	if ctx.Err() == nil && o.leaderKills > 0 {
		var failures []string
		r.leader, failures = runLeaderKill(ctx, w, o)
		r.failures = append(r.failures, failures...)
	}
	if ctx.Err() == nil && o.outage > 0 {
		var failures []string
		r.outage, failures = (&apiserverOutage{w: w, duration: o.outage}).run(ctx)
		r.failures = append(r.failures, failures...)
	}
	if faults := selectFaults(o.faults); ctx.Err() == nil && len(faults) > 0 {
		var failures []string
		r.matrix, failures = (&faultMatrix{w: w, banks: sandbox.Banks(), faults: faults, window: o.faultWindow}).run(ctx)
		r.failures = append(r.failures, failures...)
	}
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

func runKillNine(ctx context.Context, w *world, o options) ([]killRow, []string) {
	logf("kill -9: %d kills of the manager during rotating refreshes (tokens live %s)", o.kills, o.lifetime)
	k := &killNine{w: w, rng: rand.New(rand.NewPCG(o.seed, 1)), kills: o.kills,
		restartWindow: o.restartWindow, lifetime: o.lifetime, answerDelay: o.answerDelay}
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

// selectFaults picks the matrix's faults by name; an unknown name stops the run.
func selectFaults(names string) []faultCase {
	if names == "none" || names == "" {
		return nil
	}
	var picked []faultCase
	for _, fc := range allFaults() {
		if names == "all" || slices.Contains(strings.Split(names, ","), fc.name) {
			picked = append(picked, fc)
		}
	}
	if names != "all" && len(picked) != len(strings.Split(names, ",")) {
		fmt.Fprintf(os.Stderr, "chaos: --faults=%q names a fault the matrix does not have\n", names)
		os.Exit(2)
	}
	return picked
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
