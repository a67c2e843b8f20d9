package main

import (
	"cmp"
	"flag"
	"os"
	"strings"
	"time"

	"github.com/banktoken/bank-token-operator/internal/issuermetadata"

	"k8s.io/client-go/rest"

	internalcontroller "github.com/banktoken/bank-token-operator/internal/controller"
	"github.com/banktoken/bank-token-operator/internal/sharding"
)

// managerFlags are the manager's flags other than the metrics server's and the security
// ones: how it runs (leader election, workers, apiserver rate) and the settings that shape
// its decisions.
type managerFlags struct {
	probeAddr            string
	pprofAddr            string
	leaderElect          bool
	leaderElectNamespace string
	leaseDuration        time.Duration
	renewDeadline        time.Duration
	retryPeriod          time.Duration
	watchNamespaces      string
	workers              int
	kubeAPIQPS           float64
	kubeAPIBurst         int
	requestTimeout       time.Duration
	issuerMetadataEvery  time.Duration
	// controllerRing and shardName make the manager a shard (see shard()).
	controllerRing string
	shardName      string
	// settings are bound field by field; settings() completes them from the security flags.
	settings internalcontroller.Settings
}

func bindManagerFlags(fs *flag.FlagSet) *managerFlags {
	f := &managerFlags{settings: internalcontroller.DefaultSettings()}
	f.bindRuntime(fs)
	f.bindSharding(fs)
	f.bindSettings(fs)
	return f
}

// bindSharding binds the flags that make the manager one shard of a ring of
// kubernetes-controller-sharding (docs/scaling.md). Without --controller-ring it works on
// every request, as one replica with leader election does.
func (f *managerFlags) bindSharding(fs *flag.FlagSet) {
	fs.StringVar(&f.controllerRing, "controller-ring", "",
		"The ControllerRing this manager is a shard of. When given, it holds a shard Lease of its own (named after the "+
			"shard, in --leader-election-namespace or POD_NAMESPACE) instead of taking part in leader election, works only "+
			"on the BankTokenRequests the sharder labelled with its name, and lets go of those the sharder drains; "+
			"--leader-elect is ignored. Default: not sharded.")
	hostname, _ := os.Hostname()
	fs.StringVar(&f.shardName, "shard-name", cmp.Or(os.Getenv("POD_NAME"), hostname),
		"This shard's name: its Lease's name and holder identity, and the shard label's value on its objects. "+
			"Default: POD_NAME, else the hostname. Used with --controller-ring.")
}

// shard is this manager's place in its ring; the zero value when it is not sharded.
func (f *managerFlags) shard() sharding.Shard {
	if f.controllerRing == "" {
		return sharding.Shard{}
	}
	return sharding.Shard{Ring: f.controllerRing, Name: f.shardName}
}

// leaseNamespace is where the leader election or shard Lease lives: the flag, else the
// namespace the manager runs in.
func (f *managerFlags) leaseNamespace() string {
	return cmp.Or(f.leaderElectNamespace, os.Getenv("POD_NAMESPACE"))
}

// bindRuntime binds how the manager runs.
func (f *managerFlags) bindRuntime(fs *flag.FlagSet) {
	// Leader election is on by default when running inside a cluster, where more than one
	// replica may run; out of cluster (make run, make demo) it is off by default.
	_, inClusterErr := rest.InClusterConfig()
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "The address the health probes bind to.")
	// Off by default: profiles show what the manager is doing, not secrets, but an
	// unauthenticated endpoint has no place in a production Pod. make bench turns it on.
	fs.StringVar(&f.pprofAddr, "pprof-bind-address", "",
		"The address net/http/pprof is served on, for profiling (e.g. 127.0.0.1:6060). Default: off.")
	fs.BoolVar(&f.leaderElect, "leader-elect", inClusterErr == nil,
		"Enable leader election, so that only one replica reconciles at a time. Default: on in a cluster, off outside.")
	fs.StringVar(&f.leaderElectNamespace, "leader-election-namespace", "",
		"Namespace of the leader election lease. Default: the namespace the manager runs in.")
	// client-go's defaults; shorter ones let a standby take over sooner after a leader dies
	// without releasing its lease (make chaos kills leaders).
	fs.DurationVar(&f.leaseDuration, "leader-election-lease-duration", 15*time.Second,
		"How long a standby waits after the leader's last renewal before taking the lease.")
	fs.DurationVar(&f.renewDeadline, "leader-election-renew-deadline", 10*time.Second,
		"How long the leader retries renewing its lease before giving up leadership.")
	fs.DurationVar(&f.retryPeriod, "leader-election-retry-period", 2*time.Second,
		"How often leader election clients try to acquire or renew the lease.")
	fs.StringVar(&f.watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces to watch. Default: all namespaces.")
	// Defaults measured with make bench on 2 cores (docs/scaling.md). A reconcile waits on
	// round trips, not CPU. client-go limits each of controller-runtime's clients per resource
	// kind (each kind gets its own REST client, and its own token bucket at this QPS): the
	// reads of Secrets, two per renewal, paced renewals at QPS/2 (at 200 QPS and three reads,
	// 64/s against the 125/s that 50,000 tokens living 10 minutes need). 500 leaves room for
	// 250 renewals/s. The workers bound a namespace's token calls (a quarter of them, each
	// holding its slot for its reads, call and Secret write): 16 gave one namespace 4, about
	// 60 renewals/s on a loaded machine; 32 give it 8.
	fs.IntVar(&f.workers, "max-concurrent-reconciles", 32, "How many BankTokenRequests are reconciled at once.")
	fs.Float64Var(&f.kubeAPIQPS, "kube-api-qps", 500,
		"Queries per second the manager may make to the apiserver, per resource kind: reads of Secrets, writes of Secrets, "+
			"status writes each get this rate (client-go's limiter of each REST client). A renewal reads 2 Secrets.")
	fs.IntVar(&f.kubeAPIBurst, "kube-api-burst", 1000, "Burst of queries the manager may make to the apiserver.")
	fs.DurationVar(&f.issuerMetadataEvery, "issuer-metadata-interval", issuermetadata.DefaultInterval,
		"How long an issuer's metadata (spec.issuer) is used before it is read again. A token call that fails as a moved "+
			"endpoint would (404, 405, connection refused, a TLS name mismatch) reads it again at once.")
	fs.DurationVar(&f.requestTimeout, "token-request-timeout", 30*time.Second,
		"Timeout of one call to a token endpoint. On shutdown the manager waits this long plus 15s for renewals under way; "+
			"keep the Pod's terminationGracePeriodSeconds (60 by default) above that.")
}

// bindSettings binds the settings that shape the reconciler's decisions.
func (f *managerFlags) bindSettings(fs *flag.FlagSet) {
	s := &f.settings
	fs.BoolVar(&s.AllowInsecureEndpoints, "allow-insecure-endpoints", false,
		"Accept http:// token endpoints. For tests and local sandboxes only: credentials cross the network in clear text.")
	fs.BoolVar(&s.IssueEvents, "issue-events", false,
		"Emit TokenIssued/TokenRefreshed events for routine issues (one more apiserver write per token). "+
			"Failures, recoveries and rejected refresh tokens always emit events.")
	fs.DurationVar(&s.DefaultTokenLifetime, "default-token-lifetime", s.DefaultTokenLifetime,
		"Lifetime assumed for a token whose response states none and which is not a JWT with exp.")
	fs.DurationVar(&s.SecretPropagationDelay, "secret-propagation-delay", s.SecretPropagationDelay,
		"How late a workload may see a renewed output Secret (a mounted Secret syncs after the kubelet's sync period "+
			"plus its cache TTL). The token a renewal replaces stays usable at the bank at least this long, and renewal "+
			"leaves this much before expiry when the lifetime allows.")
	fs.IntVar(&s.TokenCallsPerNamespace, "token-calls-per-namespace", 0,
		"How many token calls one namespace may have under way at once; its other due renewals wait, so that its hung "+
			"endpoints cannot take every worker. Default (0): a quarter of --max-concurrent-reconciles, at least 1.")
	fs.IntVar(&s.TokenCallReserve, "token-call-reserve", s.TokenCallReserve,
		"How many workers only a namespace with no token call under way may take: one with a call under way starts "+
			"another only while fewer than --max-concurrent-reconciles minus this are under way in all, so that as many "+
			"namespaces as this whose endpoints hang still leave a worker for another namespace's call. "+
			"Default (-1): half of --max-concurrent-reconciles; 0: no reserve.")
	s.ClusterConnectionNamespace = cmp.Or(os.Getenv("POD_NAMESPACE"), s.ClusterConnectionNamespace)
	fs.StringVar(&s.ClusterConnectionNamespace, clusterConnectionNamespaceFlag, s.ClusterConnectionNamespace,
		"The one namespace the Secrets and ConfigMaps that ClusterBankConnections name are read from, so that no tenant "+
			"namespace holds a shared client's credentials. Default: the namespace the operator runs in (POD_NAMESPACE), "+
			"else "+internalcontroller.DefaultClusterConnectionNamespace+". With --watch-namespaces, ClusterBankConnections "+
			"are served only when this is given: the operator then needs to list and watch ClusterBankConnections and "+
			"Namespaces cluster-wide.")
	fs.DurationVar(&s.SharedGrantGrace, "shared-grant-grace", s.SharedGrantGrace,
		"How long a shared grant (a connection with grantSharing Shared) outlives its last reader before it is revoked, "+
			"so that a request deleted and created again soon after does not cost a new grant. Never less than "+
			"--secret-propagation-delay.")
	fs.DurationVar(&s.SharedGrantCopyAllowance, "shared-grant-copy-allowance", s.SharedGrantCopyAllowance,
		"How long the readers of a shared grant may take to copy a renewed token into their output Secrets: a shared "+
			"grant's replaced token stays usable --secret-propagation-delay plus this, and its renewal leaves as much "+
			"before expiry when the lifetime allows.")
	fs.DurationVar(&s.MinRenewalInterval, "min-renewal-interval", s.MinRenewalInterval,
		"The least time between two renewals of a token, whatever lifetime the bank gives it. A token that lives less "+
			"is expired in between, and its Ready condition says so.")
}

const clusterConnectionNamespaceFlag = "cluster-connection-namespace"

// clusterConnectionNamespace is --cluster-connection-namespace, or "" (ClusterBankConnections
// not served) when --watch-namespaces confines the operator and the flag was not given: the
// Roles of such an install let it list no cluster-scoped object, and its cache would never
// sync.
func (f *managerFlags) clusterConnectionNamespace(fs *flag.FlagSet) string {
	given := false
	fs.Visit(func(fl *flag.Flag) { given = given || fl.Name == clusterConnectionNamespaceFlag })
	if len(f.namespaces()) > 0 && !given {
		return ""
	}
	return f.settings.ClusterConnectionNamespace
}

// namespaces are the watched namespaces; none means all.
func (f *managerFlags) namespaces() []string {
	var namespaces []string
	for _, ns := range strings.Split(f.watchNamespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			namespaces = append(namespaces, ns)
		}
	}
	return namespaces
}
