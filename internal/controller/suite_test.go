package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/callbudget"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
	"github.com/banktoken/bank-token-operator/internal/sharding"
)

// The suite runs the real manager against a real kube-apiserver and the fake banks over TLS.
// It counts what the manager writes to the apiserver (by namespace) and what it sends to the
// banks, and captures every log line it prints, so tests can assert writes, calls and leaks.

var (
	controlPlane *harness.ControlPlane
	cfg          *rest.Config
	k8sClient    client.Client
	bank         *sandbox.Server
	writes       = &writeCounter{byNamespace: map[string]int{}}
	managerLog   = &syncBuffer{}

	suiteCtx    context.Context
	suiteCancel context.CancelFunc
	stopManager context.CancelFunc
	managerDone chan struct{}
	// reconciler, connectionStatus and managerCache are the running manager's, for tests
	// that look inside.
	reconciler       *BankTokenRequestReconciler
	connectionStatus *ConnectionStatusReconciler
	managerCache     cache.Cache
)

// connectionsLabel marks the specs of connections, call budgets and shared grants: make test
// runs them in a process of their own beside the rest of the suite (hack/go-test.sh), as
// both spend most of their time waiting on tokens to age, not on the CPU.
const connectionsLabel = "connections"

func TestController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(managerLog), zap.Level(zapcore.DebugLevel)))
	suiteCtx, suiteCancel = context.WithCancel(context.Background())

	cp, err := harness.StartControlPlane(harness.ControlPlaneOptions{})
	Expect(err).NotTo(HaveOccurred())
	controlPlane, cfg, k8sClient = cp, cp.Config, cp.Client

	bank, err = sandbox.Start(sandbox.Options{})
	Expect(err).NotTo(HaveOccurred())

	Expect(k8sClient.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: clusterConnectionNamespace}})).To(Succeed())
	startManager()
})

// Every spec waits up to 20 s, polling every 100 ms: tokens here live seconds.
var _ = BeforeEach(func() {
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
})

var _ = AfterSuite(func() {
	// Teardown is deferred so that a failing leak check cannot leave etcd and kube-apiserver running.
	defer func() {
		if stopManager != nil {
			stopManager()
			<-managerDone
		}
		suiteCancel()
		if bank != nil {
			bank.Close()
		}
		if controlPlane != nil {
			Expect(controlPlane.Stop()).To(Succeed())
		}
	}()
	if k8sClient != nil {
		checkNoSecretsLeaked()
	}
})

// startManager runs a fresh manager, as a restarted pod would: nothing is carried over.
func startManager() {
	managerCfg := rest.CopyConfig(cfg)
	managerCfg.Wrap(writes.wrap)
	options := ManagerOptions(k8sClient.Scheme(), nil, sharding.Shard{})
	options.Metrics = metricsserver.Options{BindAddress: "0"}
	// A short resync makes every resource be reconciled again and again: the idle test
	// checks that such reconciles write nothing and call no bank.
	options.Cache.SyncPeriod = &resyncPeriod
	mgr, err := ctrl.NewManager(managerCfg, options)
	Expect(err).NotTo(HaveOccurred())
	// The sandbox banks listen on loopback; everything else is guarded as in production,
	// the real apiserver's addresses included.
	guard, err := providers.NewEndpointGuard(providers.EndpointRules{AllowLoopback: true})
	Expect(err).NotTo(HaveOccurred())
	Expect(GuardAPIServerAddresses(suiteCtx, mgr, guard)).To(Succeed())
	r := NewReconciler(mgr, providers.NewClient(providers.ClientOptions{Timeout: 5 * time.Second, Guard: guard, Proxy: managerProxy.choose}))
	r.CredentialsLabelRequired = credentialsLabelRequired
	r.ClusterConnectionNamespace = clusterConnectionNamespace
	r.Metrics = NewMetrics()
	// Tokens here live seconds: workloads are taken to read the output Secret 3 s late.
	r.SecretPropagationDelay = workloadLag
	// ... and are renewed every few seconds, below the production floor.
	r.MinRenewalInterval = time.Second
	// Every restart starts with empty budgets, as a new process does: they are seeded from status.
	r.Budgets = callbudget.New(callbudget.Options{Metrics: callbudget.NewMetrics()})
	// ... shared grants outlive their last reader by the propagation delay only, and their
	// readers copy a renewal within 2 s.
	r.SharedGrantGrace = time.Second
	r.SharedGrantCopyAllowance = sharedGrantCopyAllowance
	reconciler, managerCache = r, mgr.GetCache()
	skipNameValidation := true
	Expect(r.SetupWithManager(suiteCtx, mgr, controller.Options{
		MaxConcurrentReconciles: 4, SkipNameValidation: &skipNameValidation,
	})).To(Succeed())
	connectionStatus = NewConnectionStatusReconciler(r)
	connectionStatus.Metrics = NewConnectionMetrics()
	// Counts within seconds, not the production 30 s: the specs read them.
	connectionStatus.RefreshInterval = connectionStatusRefresh
	Expect(connectionStatus.SetupWithManager(mgr, controller.Options{
		MaxConcurrentReconciles: 2, SkipNameValidation: &skipNameValidation,
	})).To(Succeed())

	ctx, cancel := context.WithCancel(suiteCtx)
	stopManager = cancel
	managerDone = make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(managerDone)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
}

func restartManager() {
	stopManager()
	<-managerDone
	startManager()
}

// writeCounter counts the manager's mutating apiserver calls per namespace, and its reads
// of single Secrets (the informers list and watch; only the reconciler GETs a Secret).
type writeCounter struct {
	mu          sync.Mutex
	byNamespace map[string]int
	log         map[string][]string
	secretGets  map[string]int
}

func (w *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/secrets/") {
			w.mu.Lock()
			if w.secretGets == nil {
				w.secretGets = map[string]int{}
			}
			w.secretGets[namespaceOf(req.URL.Path)]++
			w.mu.Unlock()
		}
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			ns := namespaceOf(req.URL.Path)
			w.mu.Lock()
			w.byNamespace[ns]++
			if w.log == nil {
				w.log = map[string][]string{}
			}
			w.log[ns] = append(w.log[ns], req.Method+" "+req.URL.Path)
			w.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

func (w *writeCounter) count(namespace string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.byNamespace[namespace]
}

func (w *writeCounter) secretReads(namespace string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.secretGets[namespace]
}

func (w *writeCounter) calls(namespace string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.log[namespace]...)
}

func namespaceOf(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if p == "namespaces" && i+1 < len(parts) {
			return parts[i+1]
		}
	}
	return ""
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var resyncPeriod = 4 * time.Second

// credentialsLabelRequired is what the next startManager runs with (--credentials-label-required).
var credentialsLabelRequired bool

// workloadLag is the secret propagation delay the suite's manager runs with.
const workloadLag = 3 * time.Second

// connectionStatusRefresh is how often the suite's manager rewrites a connection's counts.
const connectionStatusRefresh = 2 * time.Second

// sharedGrantCopyAllowance is the suite's manager's --shared-grant-copy-allowance.
const sharedGrantCopyAllowance = 2 * time.Second

// clusterConnectionNamespace is the suite's manager's --cluster-connection-namespace.
const clusterConnectionNamespace = "bank-token-operator-system"

var _ = metav1.Now

// statusSeen collects the status of every resource as each test leaves it, for the leak
// check: conditions carry the bank's own (cleaned) words, and the viewer role reads them.
var statusSeen = &syncBuffer{}

// recordStatus adds the status of every BankTokenRequest in namespace to statusSeen.
func recordStatus(namespace string) {
	list := &tokensv1alpha1.BankTokenRequestList{}
	Expect(k8sClient.List(suiteCtx, list, client.InNamespace(namespace))).To(Succeed())
	for _, btr := range list.Items {
		raw, err := json.Marshal(btr.Status)
		Expect(err).NotTo(HaveOccurred())
		_, _ = statusSeen.Write(append(raw, '\n'))
	}
}

// checkNoSecretsLeaked: no secret may reach a log line, an event or a status, over
// everything the suite did.
func checkNoSecretsLeaked() {
	for _, name := range sandbox.Banks() {
		c := bank.Credentials(name)
		seenSecrets.add(c.ClientSecret)
		seenSecrets.add(c.Password)
	}
	Expect(len(seenSecrets.values)).To(BeNumerically(">=", 5), "the leak check must have values to look for")
	logs := managerLog.String()
	Expect(logs).NotTo(BeEmpty())
	list := &eventsv1.EventList{}
	Expect(k8sClient.List(context.Background(), list)).To(Succeed())
	Expect(list.Items).NotTo(BeEmpty())
	var eventText strings.Builder
	for _, e := range list.Items {
		eventText.WriteString(e.Reason + " " + e.Note + "\n")
	}
	conditions := statusSeen.String()
	Expect(conditions).NotTo(BeEmpty())
	for _, v := range seenSecrets.values {
		Expect(strings.Contains(logs, v)).To(BeFalse(), "a secret value appeared in the manager's logs")
		Expect(strings.Contains(eventText.String(), v)).To(BeFalse(), "a secret value appeared in an event")
		Expect(strings.Contains(conditions, v)).To(BeFalse(), "a secret value appeared in a status the viewer role reads")
	}
	GinkgoWriter.Printf("leak check: %d secret values, %d bytes of logs, %d events, %d bytes of status: none leaked\n",
		len(seenSecrets.values), len(logs), len(list.Items), len(conditions))
}
