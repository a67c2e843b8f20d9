// Command bench measures the operator at scale on a local control plane: how fast N tokens
// are issued, how many apiserver writes and token calls each costs, what the manager's
// memory peaks at, that an idle operator writes and calls nothing, how refreshes of tokens
// issued together spread, what 10,000 unrelated Secrets cost the manager, how fast a
// manager started on a backlog of N waiting resources issues their tokens, and what a
// restart (kill -9) with N valid tokens costs: time to settle, Secret reads, token calls,
// and how late the renewals that fell due while it was down are, and what a renewal round
// of N requests costs inline, on one connection with a grant each, and with one shared grant.
//
// It starts etcd and kube-apiserver (envtest, with the CRD from config/crd/bases), an
// instant token endpoint in-process, and the manager (go build ./cmd) as its own process.
// It is not part of `go test ./...`; run it with `make bench`, or:
//
//	KUBEBUILDER_ASSETS=$(make -s setup-envtest | sed -n 's/^KUBEBUILDER_ASSETS=//p') \
//	  go run ./test/bench --sizes=100,1000 --idle=20s
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/banktoken/bank-token-operator/internal/harness"
)

type bench struct {
	root, assets, workDir, managerBin string
	managerArgs                       []string
	flagsLabel                        string

	sizes             []int
	idle              time.Duration
	timeout           time.Duration
	tokenLifetime     time.Duration
	clientQPS         float32
	createConcurrency int

	spreadN        int
	spreadLifetime time.Duration

	memTokens, memSecrets, memSecretBytes int
	memSettle                             time.Duration

	backlogSizes []int

	restartN, restartDue                  int
	restartDueLifetime, restartMinRenewal time.Duration

	steadyN, largeN           int
	steadyLifetime, steadyFor time.Duration
	steadyWarmup              time.Duration

	connN, connNamespaces, connRounds int
	connLifetime, connBudgetWatch     time.Duration
	connSetups                        []connectionSetup

	bank *bank
}

func main() {
	b, f := parseFlags()
	// The bench's own watch cache and envtest log through controller-runtime: keep it quiet.
	ctrllog.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	want, err := b.configure(f)
	fatalIf(err)
	fatalIf(os.MkdirAll(b.workDir, 0o755))
	fatalIf(b.prepareManager(f))

	b.bank, err = startBank()
	fatalIf(err)
	defer b.bank.close()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	started := time.Now()
	b.report(os.Stdout, os.Args[1:], b.runAll(ctx, want), time.Since(started))
}

// flags are the command-line values that configure and prepareManager still have to read;
// the others go straight into the bench.
type flags struct {
	sizes, scenarios, backlogSizes string
	connectionSetups               string
	managerBin, managerArgs        string
	workers, burst                 int
	qps, clientQPS                 float64
}

func parseFlags() (*bench, flags) {
	var (
		b = &bench{}
		f flags
	)
	flag.StringVar(&f.sizes, "sizes", "100,1000,5000", "Comma-separated numbers of BankTokenRequests, one scale run each.")
	flag.StringVar(&f.scenarios, "scenarios", "scale,spread,memory,backlog,restart,connection,steady", "Which runs: any of scale, spread, memory, backlog, restart, connection, steady, memory50k (the last only when named).")
	flag.DurationVar(&b.idle, "idle", 2*time.Minute, "Idle window after each scale run, in which nothing is due: writes and token calls must be 0.")
	flag.DurationVar(&b.timeout, "timeout", 10*time.Minute, "Give up waiting for a run's tokens after this long.")
	flag.IntVar(&f.workers, "max-concurrent-reconciles", 0, "Passed to the manager when > 0; otherwise the manager's default.")
	flag.Float64Var(&f.qps, "kube-api-qps", 0, "Passed to the manager when > 0; otherwise the manager's default.")
	flag.IntVar(&f.burst, "kube-api-burst", 0, "Passed to the manager when > 0; otherwise the manager's default.")
	flag.StringVar(&f.managerArgs, "manager-args", "", "More flags for the manager, space-separated.")
	flag.StringVar(&f.managerBin, "manager", "", "A prebuilt manager binary; default: go build ./cmd into bin/manager.")
	flag.StringVar(&b.workDir, "work-dir", "", "Where logs, kubeconfigs, profiles and CSVs go; default bin/bench.")
	flag.StringVar(&b.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "Directory with etcd and kube-apiserver (default $KUBEBUILDER_ASSETS).")
	flag.DurationVar(&b.tokenLifetime, "token-lifetime", 24*time.Hour, "Lifetime of the tokens in the scale and memory runs (long: nothing falls due while idle).")
	flag.Float64Var(&f.clientQPS, "client-qps", 5000, "QPS and burst of the bench's own client (it creates thousands of objects).")
	flag.IntVar(&b.createConcurrency, "create-concurrency", 32, "Concurrent creates by the bench's own client.")
	flag.IntVar(&b.spreadN, "spread-n", 1000, "Tokens in the refresh-spread run.")
	flag.DurationVar(&b.spreadLifetime, "spread-lifetime", 90*time.Second, "Token lifetime in the refresh-spread run (refresh at about 2/3 of it).")
	flag.IntVar(&b.memTokens, "memory-tokens", 100, "BankTokenRequests in the cluster during the memory run.")
	flag.IntVar(&b.memSecrets, "memory-secrets", 10000, "Unrelated Secrets created for the memory run.")
	flag.IntVar(&b.memSecretBytes, "memory-secret-bytes", 10*1024, "Size of each unrelated Secret's data.")
	flag.DurationVar(&b.memSettle, "memory-settle", 15*time.Second, "How long each measured manager runs after its caches sync before its RSS is read.")
	flag.StringVar(&f.backlogSizes, "backlog-sizes", "1000,5000", "Comma-separated numbers of BankTokenRequests created before the manager starts, one backlog run each.")
	flag.IntVar(&b.restartN, "restart-n", 5000, "Valid long-lived tokens in the cluster when the manager is killed and restarted.")
	flag.IntVar(&b.restartDue, "restart-due", 20, "More tokens in the restart run whose renewal falls due while the manager is down.")
	flag.DurationVar(&b.restartDueLifetime, "restart-due-lifetime", 24*time.Second, "Lifetime of the due tokens in the restart run (renewal at about 2/3 of it, at least --restart-min-renewal-interval).")
	flag.DurationVar(&b.restartMinRenewal, "restart-min-renewal-interval", 10*time.Second, "Passed to both managers of the restart run as --min-renewal-interval, so that the due tokens fall due seconds after issue.")
	flag.IntVar(&b.steadyN, "steady-n", 5000, "Tokens in the steady-state run.")
	flag.DurationVar(&b.steadyLifetime, "steady-lifetime", time.Minute,
		"Token lifetime in the steady-state run: renewed every ~0.63 of it, so 5,000 tokens living 60 s need the renewals of 50,000 living 10 minutes (~130/s).")
	flag.DurationVar(&b.steadyWarmup, "steady-warmup", time.Minute,
		"How long the steady-state run renews before it measures: the renewals of tokens issued while the others were still being issued fall due together.")
	flag.DurationVar(&b.steadyFor, "steady-for", 3*time.Minute, "How long the steady-state run renews after all tokens are Ready (make bench-steady: 10m).")
	flag.IntVar(&b.largeN, "memory50k-n", 50000, "Long-lived tokens in the memory50k run (backlog, then restart).")
	flag.IntVar(&b.connN, "connection-n", 1000, "Requests in each set-up of the connection run.")
	flag.IntVar(&b.connNamespaces, "connection-namespaces", 4, "Tenant namespaces the connection run's requests spread over, all admitted by the ClusterBankConnection.")
	flag.DurationVar(&b.connLifetime, "connection-lifetime", time.Minute, "Token lifetime in the connection run (renewal at about 2/3 of it, at least the manager's --min-renewal-interval, 30 s by default).")
	flag.IntVar(&b.connRounds, "connection-rounds", 1, "Renewal rounds measured per set-up of the connection run (a round: every output Secret got a new token).")
	flag.StringVar(&f.connectionSetups, "connection-setups", "inline,per-request,shared",
		"Set-ups of the connection run: any of inline, per-request, shared, per-request-default-budget (the connection's default budget of 60 calls a minute, watched for --connection-budget-watch).")
	flag.DurationVar(&b.connBudgetWatch, "connection-budget-watch", 2*time.Minute, "How long the per-request-default-budget set-up watches the bank's calls.")
	flag.Parse()
	b.clientQPS = float32(f.clientQPS)
	return b, f
}

// configure finds the module root and the control plane, reads the run sizes, and returns
// the scenarios asked for.
func (b *bench) configure(f flags) (want map[string]bool, err error) {
	if b.root, err = harness.RepoRoot(); err != nil {
		return nil, err
	}
	if b.workDir == "" {
		b.workDir = filepath.Join(b.root, "bin", "bench")
	}
	if b.assets == "" {
		return nil, fmt.Errorf("no control plane: set KUBEBUILDER_ASSETS or --assets (make bench does it: `make setup-envtest`)")
	}
	if b.sizes, err = parseSizes(f.sizes); err != nil {
		return nil, err
	}
	if b.backlogSizes, err = parseSizes(f.backlogSizes); err != nil {
		return nil, err
	}
	if b.connSetups, err = parseConnectionSetups(f.connectionSetups); err != nil {
		return nil, err
	}
	if b.connRounds < 1 || b.connNamespaces < 1 {
		return nil, fmt.Errorf("--connection-rounds and --connection-namespaces must be at least 1")
	}
	return parseScenarios(f.scenarios)
}

// parseScenarios reads --scenarios as the set of runs asked for.
func parseScenarios(list string) (map[string]bool, error) {
	want := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(scenarioNames, s) {
			return nil, fmt.Errorf("unknown scenario %q in --scenarios: the runs are %s", s, strings.Join(scenarioNames, ", "))
		}
		want[s] = true
	}
	return want, nil
}

// prepareManager builds the manager unless --manager names one, and collects the flags it
// runs with.
func (b *bench) prepareManager(f flags) error {
	b.managerBin = f.managerBin
	if b.managerBin == "" {
		b.managerBin = filepath.Join(b.root, "bin", "manager")
		logf("building the manager: go build -o bin/manager ./cmd")
		if err := harness.BuildManager(b.root, b.managerBin); err != nil {
			return err
		}
	}
	if f.workers > 0 {
		b.managerArgs = append(b.managerArgs, fmt.Sprintf("--max-concurrent-reconciles=%d", f.workers))
	}
	if f.qps > 0 {
		b.managerArgs = append(b.managerArgs, fmt.Sprintf("--kube-api-qps=%g", f.qps))
	}
	if f.burst > 0 {
		b.managerArgs = append(b.managerArgs, fmt.Sprintf("--kube-api-burst=%d", f.burst))
	}
	b.managerArgs = append(b.managerArgs, strings.Fields(f.managerArgs)...)
	b.flagsLabel = effectiveFlags(b.managerBin, b.managerArgs)
	return nil
}

// scenarioNames are the runs --scenarios may name, in the order they run.
var scenarioNames = []string{"scale", "spread", "memory", "backlog", "restart", "connection", "steady", "memory50k"}

// results are what the runs asked for measured; a run not asked for is empty.
type results struct {
	scale   []scaleResult
	spread  *spreadResult
	mem     *memoryResult
	backlog []backlogResult
	restart *restartResult
	conn    []connectionResult
	steady  *steadyResult
	large   *largeResult
}

// runAll runs the scenarios in want in a fixed order, stopping at an interrupt.
func (b *bench) runAll(ctx context.Context, want map[string]bool) (res results) {
	for _, n := range b.sizes {
		if !want["scale"] || ctx.Err() != nil {
			break
		}
		res.scale = append(res.scale, b.runScale(ctx, n))
	}
	if want["spread"] && ctx.Err() == nil {
		r := b.runSpread(ctx)
		res.spread = &r
	}
	if want["memory"] && ctx.Err() == nil {
		r := b.runMemory(ctx)
		res.mem = &r
	}
	for _, n := range b.backlogSizes {
		if !want["backlog"] || ctx.Err() != nil {
			break
		}
		res.backlog = append(res.backlog, b.runBacklog(ctx, n))
	}
	if want["restart"] && ctx.Err() == nil {
		r := b.runRestart(ctx)
		res.restart = &r
	}
	if want["connection"] && ctx.Err() == nil {
		res.conn = b.runConnections(ctx)
	}
	if want["steady"] && ctx.Err() == nil {
		r := b.runSteady(ctx)
		res.steady = &r
	}
	if want["memory50k"] && ctx.Err() == nil {
		r := b.runLarge(ctx)
		res.large = &r
	}
	return res
}

// parseSizes reads "1000,5_000" as [1000 5000].
func parseSizes(list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(strings.ReplaceAll(s, "_", "")); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// effectiveFlags renders workers/QPS/burst as the manager will use them: the flags passed,
// or the defaults its -help prints.
func effectiveFlags(bin string, args []string) string {
	vals := map[string]string{"max-concurrent-reconciles": "?", "kube-api-qps": "?", "kube-api-burst": "?"}
	out, _ := exec.Command(bin, "-help").CombinedOutput()
	re := regexp.MustCompile(`(?s)-(max-concurrent-reconciles|kube-api-qps|kube-api-burst) \w+\n[^\n]*\(default ([^)]+)\)`)
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		vals[m[1]] = m[2]
	}
	for _, a := range args {
		for k := range vals {
			if v, ok := strings.CutPrefix(a, "--"+k+"="); ok {
				vals[k] = v
			}
		}
	}
	return fmt.Sprintf("workers %s, QPS %s, burst %s", vals["max-concurrent-reconciles"], vals["kube-api-qps"], vals["kube-api-burst"])
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func machine() string {
	cpu := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	memTotal := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				memTotal = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s)%s, %s/%s, %s", runtime.NumCPU(), cpu, memTotal, runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func fatalIf(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}
