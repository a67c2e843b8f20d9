// Command bench measures the operator at scale on a local control plane: how fast N tokens
// are issued, how many apiserver writes and token calls each costs, what the manager's
// memory peaks at, that an idle operator writes and calls nothing, how refreshes of tokens
// issued together spread, what 10,000 unrelated Secrets cost the manager, how fast a
// manager started on a backlog of N waiting resources issues their tokens, and what a
// restart (kill -9) with N valid tokens costs: time to settle, Secret reads, token calls,
// and how late the renewals that fell due while it was down are.
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

	bank *bank
}

func main() {
	var (
		sizes       = flag.String("sizes", "100,1000,5000", "Comma-separated numbers of BankTokenRequests, one scale run each.")
		scenarios   = flag.String("scenarios", "scale,spread,memory,backlog,restart", "Which runs: any of scale, spread, memory, backlog, restart.")
		idle        = flag.Duration("idle", 2*time.Minute, "Idle window after each scale run, in which nothing is due: writes and token calls must be 0.")
		timeout     = flag.Duration("timeout", 10*time.Minute, "Give up waiting for a run's tokens after this long.")
		workers     = flag.Int("max-concurrent-reconciles", 0, "Passed to the manager when > 0; otherwise the manager's default.")
		qps         = flag.Float64("kube-api-qps", 0, "Passed to the manager when > 0; otherwise the manager's default.")
		burst       = flag.Int("kube-api-burst", 0, "Passed to the manager when > 0; otherwise the manager's default.")
		extra       = flag.String("manager-args", "", "More flags for the manager, space-separated.")
		managerBin  = flag.String("manager", "", "A prebuilt manager binary; default: go build ./cmd into bin/manager.")
		assets      = flag.String("assets", os.Getenv("KUBEBUILDER_ASSETS"), "Directory with etcd and kube-apiserver (default $KUBEBUILDER_ASSETS).")
		lifetime    = flag.Duration("token-lifetime", 24*time.Hour, "Lifetime of the tokens in the scale and memory runs (long: nothing falls due while idle).")
		clientQPS   = flag.Float64("client-qps", 5000, "QPS and burst of the bench's own client (it creates thousands of objects).")
		concurrency = flag.Int("create-concurrency", 32, "Concurrent creates by the bench's own client.")
		spreadN     = flag.Int("spread-n", 1000, "Tokens in the refresh-spread run.")
		spreadLife  = flag.Duration("spread-lifetime", 90*time.Second, "Token lifetime in the refresh-spread run (refresh at about 2/3 of it).")
		memTokens   = flag.Int("memory-tokens", 100, "BankTokenRequests in the cluster during the memory run.")
		memSecrets  = flag.Int("memory-secrets", 10000, "Unrelated Secrets created for the memory run.")
		memSize     = flag.Int("memory-secret-bytes", 10*1024, "Size of each unrelated Secret's data.")
		memSettle   = flag.Duration("memory-settle", 15*time.Second, "How long each measured manager runs after its caches sync before its RSS is read.")
		backlog     = flag.String("backlog-sizes", "1000,5000", "Comma-separated numbers of BankTokenRequests created before the manager starts, one backlog run each.")
		restartN    = flag.Int("restart-n", 5000, "Valid long-lived tokens in the cluster when the manager is killed and restarted.")
		restartDue  = flag.Int("restart-due", 20, "More tokens in the restart run whose renewal falls due while the manager is down.")
		dueLife     = flag.Duration("restart-due-lifetime", 24*time.Second, "Lifetime of the due tokens in the restart run (renewal at about 2/3 of it, at least --restart-min-renewal-interval).")
		dueFloor    = flag.Duration("restart-min-renewal-interval", 10*time.Second, "Passed to both managers of the restart run as --min-renewal-interval, so that the due tokens fall due seconds after issue.")
	)
	flag.Parse()
	// The bench's own watch cache and envtest log through controller-runtime: keep it quiet.
	ctrllog.SetLogger(zap.New(zap.WriteTo(io.Discard)))

	root, err := harness.RepoRoot()
	fatalIf(err)
	b := &bench{
		root: root, assets: *assets, workDir: filepath.Join(root, "bin", "bench"),
		idle: *idle, timeout: *timeout, tokenLifetime: *lifetime,
		clientQPS: float32(*clientQPS), createConcurrency: *concurrency,
		spreadN: *spreadN, spreadLifetime: *spreadLife,
		memTokens: *memTokens, memSecrets: *memSecrets, memSecretBytes: *memSize, memSettle: *memSettle,
	}
	if b.assets == "" {
		fatalIf(fmt.Errorf("no control plane: set KUBEBUILDER_ASSETS or --assets (make bench does it: `make setup-envtest`)"))
	}
	b.sizes, err = parseSizes(*sizes)
	fatalIf(err)
	b.backlogSizes, err = parseSizes(*backlog)
	fatalIf(err)
	b.restartN, b.restartDue, b.restartDueLifetime, b.restartMinRenewal = *restartN, *restartDue, *dueLife, *dueFloor
	want := map[string]bool{}
	for _, s := range strings.Split(*scenarios, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(scenarioNames, s) {
			fatalIf(fmt.Errorf("unknown scenario %q in --scenarios: the runs are %s", s, strings.Join(scenarioNames, ", ")))
		}
		want[s] = true
	}
	fatalIf(os.MkdirAll(b.workDir, 0o755))

	b.managerBin = *managerBin
	if b.managerBin == "" {
		b.managerBin = filepath.Join(root, "bin", "manager")
		logf("building the manager: go build -o bin/manager ./cmd")
		fatalIf(harness.BuildManager(root, b.managerBin))
	}
	if *workers > 0 {
		b.managerArgs = append(b.managerArgs, fmt.Sprintf("--max-concurrent-reconciles=%d", *workers))
	}
	if *qps > 0 {
		b.managerArgs = append(b.managerArgs, fmt.Sprintf("--kube-api-qps=%g", *qps))
	}
	if *burst > 0 {
		b.managerArgs = append(b.managerArgs, fmt.Sprintf("--kube-api-burst=%d", *burst))
	}
	b.managerArgs = append(b.managerArgs, strings.Fields(*extra)...)
	b.flagsLabel = effectiveFlags(b.managerBin, b.managerArgs)

	b.bank, err = startBank()
	fatalIf(err)
	defer b.bank.close()

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	started := time.Now()
	b.report(os.Stdout, os.Args[1:], b.runAll(ctx, want), time.Since(started))
}

// scenarioNames are the runs --scenarios may name, in the order they run.
var scenarioNames = []string{"scale", "spread", "memory", "backlog", "restart"}

// results are what the runs asked for measured; a run not asked for is empty.
type results struct {
	scale   []scaleResult
	spread  *spreadResult
	mem     *memoryResult
	backlog []backlogResult
	restart *restartResult
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
