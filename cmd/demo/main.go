// Command demo is `make demo`: the operator's main job, live, on a local control plane.
//
// It starts etcd and kube-apiserver through envtest (the binaries `make setup-envtest`
// builds), installs the CRD, starts the sandbox of the five banks (internal/sandbox, the same
// fakes the tests use) with short token lifetimes, runs the real manager binary as a child
// process, applies config/samples rewritten to point at the sandbox, and shows a table that
// follows the tokens as they are issued and refreshed. Beside the samples, a
// ClusterBankConnection serves requests in two namespaces and refuses a third
// (connections.go). Midway it breaks two banks, one way each, so that the status can be seen
// telling the truth. At the end, or on Ctrl-C, it stops every process it started.
//
// Nothing it prints is a token or a credential: tokens are shown as a short sha256 prefix.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/term"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

type options struct {
	duration         time.Duration
	requireRefreshes bool
	failures         bool
	lifetime         time.Duration
	manager          string
	samples          string
	crds             string
	namespace        string
	plain            bool
}

func main() {
	var o options
	// A flag set of its own: controller-runtime registers --kubeconfig on the global one.
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	fs.DurationVar(&o.duration, "duration", 90*time.Second,
		"how long the live table runs once the BankTokenRequests are applied; 0 runs until Ctrl-C")
	fs.BoolVar(&o.requireRefreshes, "require-refreshes", false,
		"exit 1 unless, at the end, every bank is Ready, has been refreshed at least once, holds a token the bank accepts, and the injected failures were recovered from")
	fs.BoolVar(&o.failures, "failures", true,
		"inject two failures midway: Paymob revokes its refresh tokens, Banfico is briefly unavailable")
	fs.DurationVar(&o.lifetime, "lifetime", 20*time.Second, "access token lifetime in the sandbox banks")
	fs.StringVar(&o.manager, "manager", "bin/manager", "the manager binary (make build)")
	fs.StringVar(&o.samples, "samples", "config/samples", "directory of sample BankTokenRequests, one per bank")
	fs.StringVar(&o.crds, "crds", "config/crd/bases", "directory of the CRD manifests")
	fs.StringVar(&o.namespace, "namespace", "default", "namespace for the demo's objects")
	fs.BoolVar(&o.plain, "plain", false, "print snapshots every 5s instead of redrawing the table (the default when stdout is not a terminal)")
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected arguments %q\n", fs.Args())
		os.Exit(2)
	}
	if !o.plain && !term.IsTerminal(int(os.Stdout.Fd())) {
		o.plain = true
	}
	os.Exit(run(o))
}

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitInterrupted = 130
)

func run(o options) int {
	// envtest logs through controller-runtime's logger; the demo reports errors itself.
	logf.SetLogger(logr.Discard())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	interrupted := catchSignals(cancel)

	d := &demo{opts: o, start: time.Now()}
	err := d.run(ctx)
	if interrupted() {
		say("interrupted: stopping everything the demo started")
	}
	code := exitOK
	switch {
	case err != nil && ctx.Err() != nil && interrupted():
		code = exitInterrupted
	case err != nil:
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		code = exitFailed
	case d.failedChecks && o.requireRefreshes:
		code = exitFailed
	case interrupted() && o.duration > 0:
		code = exitInterrupted
	}
	if cleanupErr := d.cleanup(code == exitFailed); cleanupErr != nil {
		fmt.Fprintf(os.Stderr, "demo: cleanup: %v\n", cleanupErr)
		if code == exitOK {
			code = exitFailed
		}
	}
	return code
}

// catchSignals cancels the run on the first SIGINT, SIGTERM or SIGHUP, and keeps catching
// them afterwards: dying mid-cleanup would leave etcd and kube-apiserver running, since
// they run in process groups of their own that Ctrl-C does not reach.
func catchSignals(cancel context.CancelFunc) (interrupted func() bool) {
	var mu sync.Mutex
	got := false
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		for range ch {
			mu.Lock()
			first := !got
			got = true
			mu.Unlock()
			if first {
				// Said once the live table has drawn its last frame, not across it.
				cancel()
			} else {
				say("still stopping the manager, kube-apiserver and etcd; a few seconds more")
			}
		}
	}()
	return func() bool { mu.Lock(); defer mu.Unlock(); return got }
}

// demo holds what one run started, so that cleanup can stop exactly that.
type demo struct {
	opts  options
	start time.Time

	runDir       string
	kubeconfig   string
	controlPlane *harness.ControlPlane
	k8s          client.Client
	bank         *sandbox.Server
	manager      *harness.ManagerProcess
	children     []harness.ChildProcess

	requests     []*tokensv1alpha1.BankTokenRequest
	liveStart    time.Time
	bankOf       map[string]providers.Name // resource name -> bank
	failedChecks bool
	// replaced calls the banks' protected API with each token a renewal replaced.
	replaced *replacedTokens
	// shared is the ClusterBankConnection scene (connections.go).
	shared *sharedConnection
}

func (d *demo) run(ctx context.Context) error {
	if err := d.checkPrerequisites(); err != nil {
		return err
	}
	var err error
	if d.runDir, err = os.MkdirTemp("", "bank-token-demo-"); err != nil {
		return err
	}

	// 1. The control plane, with the CRD installed.
	if err := d.startControlPlane(ctx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// 2. The sandbox banks.
	if err := d.startSandbox(); err != nil {
		return err
	}

	// 3. Credentials, CA bundle, client certificate, and the samples rewritten for the sandbox.
	if err := d.prepareRequests(); err != nil {
		return err
	}
	if err := d.applySupportingObjects(ctx); err != nil {
		return err
	}
	if err := d.setUpSharedConnection(ctx); err != nil {
		return err
	}

	// 4. The manager, out of cluster, as `make run` would run it.
	if err := d.startManager(); err != nil {
		return err
	}
	d.children = harness.ChildProcesses()
	say("running: %s", joined(d.children))

	if err := d.applyRequests(ctx); err != nil {
		return err
	}
	d.printHowToFollow()
	return d.live(ctx)
}

// checkPrerequisites checks that the demo runs from the repository root with the control
// plane's binaries at hand.
func (d *demo) checkPrerequisites() error {
	for _, p := range []string{d.opts.manager, d.opts.samples, d.opts.crds} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%w (run the demo from the repository root with `make demo`)", err)
		}
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return errors.New("KUBEBUILDER_ASSETS is not set: run `make demo`, or point it at the directory `make setup-envtest` prints")
	}
	return nil
}

// startControlPlane starts etcd and kube-apiserver with the CRD installed. The processes it
// started are recorded even when it fails, for cleanup to stop.
func (d *demo) startControlPlane(ctx context.Context) error {
	say("starting the control plane: etcd and kube-apiserver from %s", os.Getenv("KUBEBUILDER_ASSETS"))
	began := time.Now()
	err := progress(ctx, "starting the control plane", "letting the control plane finish starting, to stop it", func() error {
		var err error
		d.controlPlane, err = harness.StartControlPlane(harness.ControlPlaneOptions{
			CRDDirectory: d.opts.crds, ClientQPS: 100, ClientBurst: 200,
			KubeconfigPath: filepath.Join(d.runDir, "kubeconfig"), KubeconfigUser: "demo-admin",
		})
		return err
	})
	d.children = harness.ChildProcesses()
	if err != nil {
		return err
	}
	say("control plane up in %s, CRD bankTokenRequests.tokens.banktoken.io installed", roundDur(time.Since(began)))
	d.k8s, d.kubeconfig = d.controlPlane.Client, d.controlPlane.Kubeconfig
	return nil
}

// printHowToFollow says how to follow the run from another terminal, and for how long it runs.
func (d *demo) printHowToFollow() {
	fmt.Println()
	say("kubeconfig: %s", d.kubeconfig)
	fmt.Printf("      in another terminal:  export KUBECONFIG=%s\n", d.kubeconfig)
	fmt.Printf("                            kubectl get btr -A -w   |   kubectl describe btr paymob-payouts\n")
	fmt.Printf("      kubectl plugin:       bin/kubectl-btr list --kubeconfig %s\n", d.kubeconfig)
	fmt.Printf("                            bin/kubectl-btr status paymob-payouts -n %s --kubeconfig %s\n", d.opts.namespace, d.kubeconfig)
	fmt.Printf("                            bin/kubectl-btr connections --kubeconfig %s\n", d.kubeconfig)
	fmt.Printf("      manager log:          %s\n", filepath.Join(d.runDir, "manager.log"))
	if d.opts.duration > 0 {
		say("watching for %s (make demo DEMO_FLAGS=--duration=0 runs until Ctrl-C)", d.opts.duration)
	} else {
		say("watching until Ctrl-C")
	}
	fmt.Println()
}

// startManager runs bin/manager out of cluster, as `make run` would run it.
func (d *demo) startManager() error {
	bin, err := filepath.Abs(d.opts.manager)
	if err != nil {
		return err
	}
	d.manager, err = harness.StartManagerProcess(harness.ManagerProcessOptions{
		Binary: bin, Kubeconfig: d.kubeconfig, LogPath: filepath.Join(d.runDir, "manager.log"),
		// The live table counts refreshes from the operator's TokenRefreshed events. Tokens
		// live seconds here, so workloads are taken to see a new Secret within a quarter of
		// a lifetime, not the two minutes of a real kubelet, and may be renewed sooner than
		// the production floor of 30 s.
		Args: []string{"--issue-events", "--secret-propagation-delay=" + (d.opts.lifetime / 4).String(), "--min-renewal-interval=1s",
			// Out of cluster there is no POD_NAMESPACE to default from: say where the
			// ClusterBankConnection's Secrets are.
			"--cluster-connection-namespace=" + operatorNamespace},
	})
	if err != nil {
		return err
	}
	say("manager started: %s %s", relPath(bin), strings.Join(d.manager.Args(), " "))
	return nil
}

func relPath(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return p
}

func joined[T fmt.Stringer](items []T) string {
	names := make([]string, len(items))
	for i, item := range items {
		names[i] = item.String()
	}
	return strings.Join(names, ", ")
}

// cleanup stops, in order, the manager, the sandbox and the control plane, then checks that
// none of the processes the demo started is still running.
func (d *demo) cleanup(keepLogs bool) error {
	var errs []error
	if d.manager != nil {
		if exited, _ := d.manager.Exited(); !exited {
			say("stopping the manager (pid %d)", d.manager.PID())
		}
		if err := d.manager.Stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if d.bank != nil {
		d.bank.Close()
	}
	if d.controlPlane != nil {
		began := time.Now()
		err := progress(context.Background(), "stopping kube-apiserver and etcd", "", d.controlPlane.Stop)
		if err != nil {
			errs = append(errs, fmt.Errorf("stopping the control plane: %w", err))
		} else {
			say("stopped kube-apiserver and etcd in %s", roundDur(time.Since(began)))
		}
	}
	if left := harness.StillRunning(d.children); len(left) > 0 {
		errs = append(errs, fmt.Errorf("still running after cleanup: %s", joined(left)))
	} else if len(d.children) > 0 {
		var names []string
		for _, c := range d.children {
			names = append(names, c.Name)
		}
		say("nothing left running (%s: all exited)", strings.Join(names, ", "))
	}
	if d.runDir != "" {
		if keepLogs || len(errs) > 0 {
			say("logs kept in %s", d.runDir)
		} else {
			_ = os.RemoveAll(d.runDir)
		}
	}
	return errors.Join(errs...)
}

// say prints one progress line.
func say(format string, args ...any) {
	fmt.Printf("demo: "+format+"\n", args...)
}

// progress runs fn and, while it runs, says every few seconds that it still does. fn cannot
// be abandoned half-done (a half-started control plane must still be stopped): when ctx
// ends first, progress says onCancel and goes on waiting.
func progress(ctx context.Context, what, onCancel string, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	began := time.Now()
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			say("  still %s (%s)...", what, roundDur(time.Since(began)))
		case <-ctx.Done():
			say("  %s...", onCancel)
			ctx = context.Background()
		}
	}
}

func roundDur(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
