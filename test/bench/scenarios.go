package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

const benchNamespace = "bench"

func credName(i int) string { return fmt.Sprintf("c-%05d", i) }
func btrName(i int) string  { return fmt.Sprintf("t-%05d", i) }

func names(n int) []string { return nameRange(0, n) }

// nameRange is the names of the BankTokenRequests from..from+n-1.
func nameRange(from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = btrName(from + i)
	}
	return out
}

// parallel runs f(0..n-1) on conc goroutines and returns the first error.
func parallel(n, conc int, f func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func createNamespace(ctx context.Context, c *cluster, name string) error {
	return c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
}

func (b *bench) createCredentials(ctx context.Context, c *cluster, ns string, n int) error {
	return parallel(n, b.createConcurrency, func(i int) error {
		return c.Client.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credName(i),
				Labels: map[string]string{tokensv1alpha1.CredentialsLabel: tokensv1alpha1.CredentialsLabelValue}},
			Data: map[string][]byte{
				tokensv1alpha1.DefaultClientIDKey:     []byte(fmt.Sprintf("client-%d", i)),
				tokensv1alpha1.DefaultClientSecretKey: []byte("bench-client-secret"),
			},
		})
	})
}

// createRequests creates the BankTokenRequests from..from+n-1 (each with the credentials
// of the same number) concurrently and returns when each create started, and when the
// first started and the last returned.
func (b *bench) createRequests(ctx context.Context, c *cluster, ns string, from, n int, endpoint string) (map[string]time.Time, time.Time, time.Time, error) {
	starts := make([]time.Time, n)
	first := time.Now()
	err := parallel(n, b.createConcurrency, func(i int) error {
		starts[i] = time.Now()
		return c.Client.Create(ctx, &tokensv1alpha1.BankTokenRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: btrName(from + i)},
			Spec: tokensv1alpha1.BankTokenRequestSpec{
				BankClient: tokensv1alpha1.BankClient{
					Provider:             tokensv1alpha1.Provider("OAuth2"),
					Endpoint:             endpoint,
					GrantType:            tokensv1alpha1.GrantType("client_credentials"),
					CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: credName(from + i)},
				},
			},
		})
	})
	last := time.Now()
	out := make(map[string]time.Time, n)
	for i, t := range starts {
		out[btrName(from+i)] = t
	}
	return out, first, last, err
}

// settledWrites scrapes until the operator's write count stops moving (Events are sent
// asynchronously and may trail the last status write), for at most max, and returns the
// writes since before.
func settledWrites(ctx context.Context, c *cluster, before requestCounts, own map[string]float64, max time.Duration) (writeDelta, error) {
	deadline := time.Now().Add(max)
	prev := -1.0
	for {
		after, err := c.scrapeRequests(ctx)
		if err != nil {
			return writeDelta{}, err
		}
		writes := diffWrites(before, after, own)
		if writes.total() == prev || time.Now().After(deadline) {
			return writes, nil
		}
		prev = writes.total()
		time.Sleep(time.Second)
	}
}

// ---------------------------------------------------------------------------------------
// Scale: N tokens issued at once, then an idle window.

type scaleResult struct {
	N             int
	Err           error
	CreateSeconds float64 // how long the bench took to create the N BankTokenRequests
	ReadySeconds  float64 // first create -> every Secret holds a token and every resource is Ready
	Writes        writeDelta
	Calls         int64
	PeakRSS       int64
	FileRSS       int64 // of the RSS after issuance, the binary's mapped pages (RssFile)
	IdleFor       time.Duration
	IdleWrites    writeDelta
	IdleCalls     int64
	P50, P99      time.Duration // apply -> output Secret holds a token
	ManagerCPU    float64       // CPU seconds the manager used during issuance
	Load          [2]string     // load average before and after
}

func (b *bench) runScale(ctx context.Context, n int) (res scaleResult) {
	res.N = n
	res.Load[0] = loadavg()
	defer func() { res.Load[1] = loadavg() }()
	b.bank.setLifetime(b.tokenLifetime)
	logf("N=%d: creating %d credentials Secrets", n, n)
	run, err := b.prepare(ctx, runSetup{credentials: n, managerLabel: fmt.Sprintf("scale-%d", n)})
	if err != nil {
		res.Err = err
		return res
	}
	defer run.close()
	if res.Err = b.measureIssuance(ctx, run, &res); res.Err != nil {
		return res
	}
	logf("N=%d: all Ready after %.1fs; idle for %s", n, res.ReadySeconds, b.idle)
	if res.Err = b.measureIdle(ctx, run, &res); res.Err != nil {
		return res
	}
	res.PeakRSS, _ = run.manager.Memory()
	res.FileRSS = run.manager.FileBackedMemory()
	return res
}

// measureIssuance creates res.N requests at once and measures their issuance: the time
// until all are Ready, the manager's CPU, the apiserver writes and token calls it cost, and
// the latency from each create to a token in its Secret.
func (b *bench) measureIssuance(ctx context.Context, run *benchRun, res *scaleResult) error {
	n := res.N
	before, err := b.readCounters(ctx, run.cluster)
	if err != nil {
		return err
	}
	cpuBefore := run.manager.CPUSeconds()

	logf("N=%d: creating %d BankTokenRequests", n, n)
	issued, err := b.issue(ctx, run, n)
	if err != nil {
		return err
	}
	res.CreateSeconds = issued.lastCreated.Sub(issued.first).Seconds()
	res.ReadySeconds = issued.allReady.Sub(issued.first).Seconds()
	res.ManagerCPU = run.manager.CPUSeconds() - cpuBefore
	own := map[string]float64{"POST banktokenrequests.tokens.banktoken.io": float64(n)}
	if res.Writes, err = settledWrites(ctx, run.cluster, before.requests, own, 15*time.Second); err != nil {
		return err
	}
	res.Calls = b.bank.calls.Load() - before.calls
	lat := createToTokenLatencies(issued.createdAt, run.obs.snapshotTokenAt())
	res.P50, res.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return nil
}

// createToTokenLatencies are, for each request with a token, the time from its create to
// the first token in its Secret.
func createToTokenLatencies(createdAt, tokenAt map[string]time.Time) []time.Duration {
	lat := make([]time.Duration, 0, len(createdAt))
	for name, s := range createdAt {
		if t, ok := tokenAt[name]; ok {
			lat = append(lat, t.Sub(s))
		}
	}
	return lat
}

// measureIdle counts the writes and token calls during b.idle, in which nothing is due
// (the tokens live for hours): both must be 0.
func (b *bench) measureIdle(ctx context.Context, run *benchRun, res *scaleResult) error {
	idleBefore, err := b.readCounters(ctx, run.cluster)
	if err != nil {
		return err
	}
	if err := sleepUntil(ctx, time.Now().Add(b.idle)); err != nil {
		return err
	}
	idleAfter, err := b.readCounters(ctx, run.cluster)
	if err != nil {
		return err
	}
	res.IdleFor = idleAfter.at.Sub(idleBefore.at).Round(time.Second)
	res.IdleWrites = diffWrites(idleBefore.requests, idleAfter.requests, nil)
	res.IdleCalls = idleAfter.calls - idleBefore.calls
	return nil
}

// counters are what the apiserver and the token endpoint had counted at one moment.
type counters struct {
	requests requestCounts
	calls    int64
	at       time.Time
}

func (b *bench) readCounters(ctx context.Context, c *cluster) (counters, error) {
	requests, err := c.scrapeRequests(ctx)
	return counters{requests: requests, calls: b.bank.calls.Load(), at: time.Now()}, err
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}

// ---------------------------------------------------------------------------------------
// Refresh spread: N short-lived tokens issued together; when are they refreshed?

type spreadResult struct {
	N            int
	Err          error
	Lifetime     time.Duration
	Window       time.Duration // renewal window: the nominal renewal point to expiry (lifetime/3)
	IssueSeconds float64
	IssuedSpread time.Duration // first to last issuedAt
	// Jitter of each renewalTime before its nominal point, as a share of the window.
	JitterMin, JitterP50, JitterMax float64
	JitterHist                      []int // buckets of 2% of the window
	// Observed refreshes (a new token in the output Secret).
	Refreshed                  int
	RefreshCalls               int64
	ObservedSpread             time.Duration // first to last observed refresh
	ObservedP5, ObservedP95    time.Duration // relative to the first observed refresh
	ObservedLeadMin, ObsLeadMx float64       // expiry - refresh, as a share of the window
	ObservedHist               []int         // buckets of ObservedBucket from the first refresh
	ObservedBucket             time.Duration
	CSV                        string // per token: first token, Ready, plan, refreshes
}

func writeSpreadCSV(path string, all []string, obs *observer, plan map[string]tokensv1alpha1.BankTokenRequestStatus) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	obs.mu.Lock()
	defer obs.mu.Unlock()
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("15:04:05.000")
	}
	fmt.Fprintln(f, "name,first_token_seen,ready_seen,issued_at,renewal_time,expires_at,refreshes_seen")
	for _, n := range all {
		st := plan[n]
		var issued, renew, exp time.Time
		if st.IssuedAt != nil {
			issued = st.IssuedAt.Time
		}
		if st.RenewalTime != nil {
			renew = st.RenewalTime.Time
		}
		if st.ExpiresAt != nil {
			exp = st.ExpiresAt.Time
		}
		var re []string
		for _, t := range obs.reissued[n] {
			re = append(re, ts(t))
		}
		fmt.Fprintf(f, "%s,%s,%s,%s,%s,%s,%s\n", n, ts(obs.tokenAt[n]), ts(obs.readyAt[n]), ts(issued), ts(renew), ts(exp), strings.Join(re, " "))
	}
	return nil
}

func (b *bench) runSpread(ctx context.Context) (res spreadResult) {
	n := b.spreadN
	res.N, res.Lifetime = n, b.spreadLifetime
	res.Window = b.spreadLifetime / 3
	b.bank.setLifetime(b.spreadLifetime)
	defer b.bank.setLifetime(b.tokenLifetime)
	run, err := b.prepare(ctx, runSetup{credentials: n, managerLabel: "spread"})
	if err != nil {
		res.Err = err
		return res
	}
	defer run.close()
	logf("spread: issuing %d tokens that live %s", n, b.spreadLifetime)
	issued, err := b.issue(ctx, run, n)
	if err != nil {
		res.Err = err
		return res
	}
	res.IssueSeconds = issued.allReady.Sub(issued.first).Seconds()
	all := names(n)
	// The first status of each, before any refresh: its renewalTime is the plan.
	plan := run.obs.snapshotStatus()
	res.measurePlanned(all, plan)

	callsBefore := b.bank.calls.Load()
	logf("spread: all issued after %.1fs; watching the refreshes", res.IssueSeconds)
	if err := b.waitRefreshes(ctx, run.obs, n, issued.allReady); err != nil {
		res.Err = err
		return res
	}
	refreshed := run.obs.reissueTimes()
	res.CSV = filepath.Join(b.workDir, "spread.csv")
	if err := writeSpreadCSV(res.CSV, all, run.obs, plan); err != nil {
		logf("spread: %v", err)
	}
	res.Refreshed = len(refreshed)
	res.RefreshCalls = b.bank.calls.Load() - callsBefore
	res.measureObserved(refreshed, plan)
	return res
}

// renewalWindow is the time from a token's nominal renewal point to its expiry.
func renewalWindow(st tokensv1alpha1.BankTokenRequestStatus) time.Duration {
	return st.ExpiresAt.Sub(st.IssuedAt.Time) / 3
}

// measurePlanned reads the spread of the planned refreshes from each request's first
// status: how much earlier than its nominal point each renewalTime lies, as a share of the
// renewal window.
func (r *spreadResult) measurePlanned(all []string, plan map[string]tokensv1alpha1.BankTokenRequestStatus) {
	var minIssued, maxIssued time.Time
	jitters := make([]float64, 0, len(all))
	r.JitterHist = make([]int, 10)
	for _, name := range all {
		st := plan[name]
		if st.RenewalTime == nil || st.ExpiresAt == nil || st.IssuedAt == nil {
			continue
		}
		if minIssued.IsZero() || st.IssuedAt.Time.Before(minIssued) {
			minIssued = st.IssuedAt.Time
		}
		if st.IssuedAt.Time.After(maxIssued) {
			maxIssued = st.IssuedAt.Time
		}
		window := renewalWindow(st)
		nominal := st.ExpiresAt.Add(-window)
		j := float64(nominal.Sub(st.RenewalTime.Time)) / float64(window)
		jitters = append(jitters, j)
		bucket := max(0, min(int(j/0.02), len(r.JitterHist)-1))
		r.JitterHist[bucket]++
	}
	r.IssuedSpread = maxIssued.Sub(minIssued)
	if len(jitters) > 0 {
		slices.Sort(jitters)
		r.JitterMin, r.JitterP50, r.JitterMax = jitters[0], jitters[len(jitters)/2], jitters[len(jitters)-1]
	}
}

// waitRefreshes waits until each of the n tokens was refreshed, which is due lifetime*2/3
// after issue at the latest, or until a lifetime has passed since the last was issued.
func (b *bench) waitRefreshes(ctx context.Context, obs *observer, n int, allIssued time.Time) error {
	deadline := allIssued.Add(b.spreadLifetime + 30*time.Second)
	for time.Now().Before(deadline) && len(obs.reissueTimes()) < n {
		if err := sleepUntil(ctx, time.Now().Add(500*time.Millisecond)); err != nil {
			return err
		}
	}
	return nil
}

// measureObserved reads the spread of the refreshes seen: from the first to the last, and
// how long before expiry each came, as a share of the renewal window.
func (r *spreadResult) measureObserved(refreshed map[string]time.Time, plan map[string]tokensv1alpha1.BankTokenRequestStatus) {
	if len(refreshed) == 0 {
		return
	}
	times := make([]time.Time, 0, len(refreshed))
	r.ObservedLeadMin, r.ObsLeadMx = 10, -10
	for name, t := range refreshed {
		times = append(times, t)
		if st := plan[name]; st.ExpiresAt != nil && st.IssuedAt != nil {
			lead := float64(st.ExpiresAt.Sub(t)) / float64(renewalWindow(st))
			r.ObservedLeadMin = min(r.ObservedLeadMin, lead)
			r.ObsLeadMx = max(r.ObsLeadMx, lead)
		}
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	t0 := times[0]
	r.ObservedSpread = times[len(times)-1].Sub(t0)
	rel := make([]time.Duration, len(times))
	for i, t := range times {
		rel[i] = t.Sub(t0)
	}
	r.ObservedP5, r.ObservedP95 = percentile(rel, 0.05), percentile(rel, 0.95)
	// At most about 20 rows: buckets of whole seconds.
	r.ObservedBucket = max(time.Second, (r.ObservedSpread/20+time.Second-1)/time.Second*time.Second)
	r.ObservedHist = make([]int, int(r.ObservedSpread/r.ObservedBucket)+1)
	for _, d := range rel {
		r.ObservedHist[int(d/r.ObservedBucket)]++
	}
}

// ---------------------------------------------------------------------------------------
// Memory: the manager's RSS with many unrelated Secrets in the cluster against none.

type memoryResult struct {
	Tokens, Unrelated, SecretBytes int
	Err                            error
	Settle                         time.Duration
	BaseHWM, BaseRSS               int64
	WithHWM, WithRSS               int64 // the Secrets in a namespace without requests
	SameHWM, SameRSS               int64 // the Secrets in the requests' namespace
	CreateSeconds                  float64
}

func (b *bench) runMemory(ctx context.Context) (res memoryResult) {
	res.Tokens, res.Unrelated, res.SecretBytes, res.Settle = b.memTokens, b.memSecrets, b.memSecretBytes, b.memSettle
	b.bank.setLifetime(b.tokenLifetime)
	run, err := b.prepare(ctx, runSetup{credentials: res.Tokens, otherNamespaces: []string{"unrelated"}})
	if err != nil {
		res.Err = err
		return res
	}
	defer run.close()
	// First the tokens are issued, so that both measured managers find the same work:
	// every resource already Ready, nothing due.
	if err := b.issueAll(ctx, run, res.Tokens); err != nil {
		res.Err = err
		return res
	}
	logf("memory: manager with %d tokens and no unrelated Secrets", res.Tokens)
	if res.BaseHWM, res.BaseRSS, err = b.managerMemory(run.cluster, "without"); err != nil {
		res.Err = err
		return res
	}
	// The same Secrets twice: first in a namespace without requests (the target), then in
	// the requests' own namespace, whose Secrets the operator watches as metadata.
	var createdIn time.Duration
	res.WithHWM, res.WithRSS, createdIn, err = b.managerMemoryWithUnrelated(ctx, run.cluster, "unrelated")
	res.CreateSeconds = createdIn.Seconds()
	if err != nil {
		res.Err = err
		return res
	}
	if res.SameHWM, res.SameRSS, _, err = b.managerMemoryWithUnrelated(ctx, run.cluster, benchNamespace); err != nil {
		res.Err = err
		return res
	}
	return res
}

// managerMemory runs a new manager for --memory-settle after its caches synced and returns
// its peak and current RSS.
func (b *bench) managerMemory(c *cluster, label string) (hwm, rss int64, err error) {
	m, err := b.startManager(c, "memory-"+label)
	if err != nil {
		return 0, 0, err
	}
	defer m.Stop(managerStopTimeout)
	time.Sleep(b.memSettle)
	hwm, rss = m.Memory()
	return hwm, rss, nil
}

// managerMemoryWithUnrelated creates the unrelated Secrets in namespace, measures a new
// manager's memory with them there, and deletes them again. It also returns how long the
// creates took.
func (b *bench) managerMemoryWithUnrelated(ctx context.Context, c *cluster, namespace string) (hwm, rss int64, createdIn time.Duration, err error) {
	logf("memory: creating %d unrelated Secrets of %d bytes in namespace %s", b.memSecrets, b.memSecretBytes, namespace)
	start := time.Now()
	if err := createUnrelatedSecrets(ctx, c, namespace, b.memSecrets, b.memSecretBytes, b.createConcurrency); err != nil {
		return 0, 0, 0, err
	}
	createdIn = time.Since(start)
	logf("memory: manager with %d tokens and %d unrelated Secrets in namespace %s", b.memTokens, b.memSecrets, namespace)
	if hwm, rss, err = b.managerMemory(c, namespace); err != nil {
		return 0, 0, createdIn, err
	}
	err = c.Client.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(namespace), client.MatchingLabels{"app": "unrelated"})
	return hwm, rss, createdIn, err
}

// issueAll runs a manager until n requests are Ready, then stops it.
func (b *bench) issueAll(ctx context.Context, run *benchRun, n int) error {
	issuer, err := b.startManager(run.cluster, "memory-issue")
	if err != nil {
		return err
	}
	defer issuer.Stop(managerStopTimeout)
	_, err = b.issue(ctx, run, n)
	return err
}

// createUnrelatedSecrets creates n Secrets of size bytes that no BankTokenRequest references.
func createUnrelatedSecrets(ctx context.Context, c *cluster, namespace string, n, size, concurrency int) error {
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	return parallel(n, concurrency, func(i int) error {
		return c.Client.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("u-%05d", i),
				Labels:      map[string]string{"app": "unrelated"},
				Annotations: map[string]string{"note": "an unrelated Secret the operator must not pay for"}},
			Data: map[string][]byte{"payload": payload},
		})
	})
}
