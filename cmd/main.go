// Command manager runs the bank-token-operator controller manager.
package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/callbudget"
	internalcontroller "github.com/banktoken/bank-token-operator/internal/controller"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sharding"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(tokensv1alpha1.AddToScheme(scheme))
}

var setupLog logr.Logger

func main() {
	var metrics metricsFlags
	metrics.bind(flag.CommandLine)
	flags := bindManagerFlags(flag.CommandLine)
	security := bindSecurityFlags(flag.CommandLine)
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog = ctrl.Log.WithName("setup")
	applyMemoryLimit()

	guard, err := security.guard()
	exitOn(err, "invalid endpoint guard flags")
	mgr := newManager(flags, &metrics)
	settings := flags.settings
	settings.CredentialsLabelRequired = security.credentialsLabelRequired
	settings.ClusterConnectionNamespace = flags.clusterConnectionNamespace(flag.CommandLine)
	warnAboutUnsafeSettings(settings, security)
	exitOn(internalcontroller.GuardAPIServerAddresses(context.Background(), mgr, guard), "unable to keep the apiserver's addresses guarded")
	setUpReconciler(mgr, flags, settings, guard)
	exitOn(mgr.AddHealthzCheck("healthz", healthz.Ping), "unable to set up the health check")
	exitOn(mgr.AddReadyzCheck("readyz", healthz.Ping), "unable to set up the ready check")
	setupLog.Info("starting manager")
	exitOn(mgr.Start(ctrl.SetupSignalHandler()), "problem running manager")
}

// exitOn logs err and exits when there is one.
func exitOn(err error, message string) {
	if err != nil {
		setupLog.Error(err, message)
		os.Exit(1)
	}
}

// newManager builds the manager: its apiserver client's rate, namespaces, metrics server,
// probes and leader election.
func newManager(flags *managerFlags, metrics *metricsFlags) manager.Manager {
	restConfig, err := ctrl.GetConfig()
	exitOn(err, "unable to load a kubeconfig")
	restConfig.QPS = float32(flags.kubeAPIQPS)
	restConfig.Burst = flags.kubeAPIBurst

	shard := flags.shard()
	exitOn(shard.Validate(), "invalid sharding flags")
	options := internalcontroller.ManagerOptions(scheme, flags.namespaces(), shard)
	metricsOptions, metricsCertWatcher, err := metrics.serverOptions()
	exitOn(err, "unable to load the metrics server's certificate")
	options.Metrics = metricsOptions
	options.HealthProbeBindAddress = flags.probeAddr
	options.PprofBindAddress = flags.pprofAddr
	options.LeaderElection = flags.leaderElect
	options.LeaderElectionID = "bank-token-operator.tokens.banktoken.io"
	options.LeaderElectionNamespace = flags.leaderElectNamespace
	options.LeaseDuration, options.RenewDeadline, options.RetryPeriod = &flags.leaseDuration, &flags.renewDeadline, &flags.retryPeriod
	if shard.Enabled() {
		// A shard runs its controllers while it holds its own Lease, which tells the sharder
		// it is a member of the ring; there is no leader.
		lease, err := sharding.NewLease(restConfig, flags.leaseNamespace(), shard)
		exitOn(err, "unable to set up the shard Lease")
		options.LeaderElection = true
		options.LeaderElectionResourceLockInterface = lease
		setupLog.Info("running as a shard", "controllerRing", shard.Ring, "shard", shard.Name)
	}
	// Hand the lease over at once on a clean shutdown rather than waiting for it to expire:
	// a shard's release makes the sharder move its objects at once.
	options.LeaderElectionReleaseOnCancel = true
	// A renewal under way when the manager stops is finished (a token call cut off after
	// it was sent spends its refresh token): wait longer than one token call. The Pod's
	// grace period (60 s) is longer still.
	options.GracefulShutdownTimeout = ptr.To(flags.requestTimeout + 15*time.Second)
	mgr, err := ctrl.NewManager(restConfig, options)
	exitOn(err, "unable to create the manager")
	if metricsCertWatcher != nil {
		exitOn(mgr.Add(metricsCertWatcher), "unable to watch the metrics server's certificate")
	}
	return mgr
}

// setUpReconciler wires the reconciler to the manager, the banks (one clock for every
// decision: the reconciler's and the token client's), the connections' call budgets and
// the metrics.
func setUpReconciler(mgr manager.Manager, flags *managerFlags, settings internalcontroller.Settings, guard *providers.EndpointGuard) {
	tokenMetrics := internalcontroller.NewMetrics()
	exitOn(tokenMetrics.Register(nil), "unable to register metrics")
	reconciler := internalcontroller.NewReconciler(mgr, nil)
	tokenClient := providers.NewClient(providers.ClientOptions{Timeout: flags.requestTimeout, Clock: reconciler.Clock, Guard: guard})
	reconciler.Fetcher, reconciler.Revoker = tokenClient, tokenClient
	reconciler.Metrics = tokenMetrics
	budgetMetrics := callbudget.NewMetrics()
	exitOn(budgetMetrics.Register(nil), "unable to register the call budgets' metrics")
	reconciler.Budgets = callbudget.New(callbudget.Options{Metrics: budgetMetrics, Clock: reconciler.Clock})
	reconciler.Settings = settings
	reconciler.IssuerMetadataInterval = flags.issuerMetadataEvery
	reconciler.Shard = flags.shard()
	if reconciler.Shard.Enabled() {
		members := &sharding.Members{Reader: mgr.GetAPIReader(), Namespace: flags.leaseNamespace(), Shard: reconciler.Shard}
		exitOn(mgr.Add(members), "unable to count the ring's shards")
		reconciler.RingMembers = members
	}
	exitOn(reconciler.SetupWithManager(context.Background(), mgr, controller.Options{MaxConcurrentReconciles: flags.workers}),
		"unable to set up the BankTokenRequest controller")
	if reconciler.Shard.Enabled() {
		// A shard sees its own requests only: its counts would be a part, and the shards' writes
		// would overwrite each other. docs/scaling.md says what a sharded set-up gives up.
		setupLog.Info("connection status is not written by a shard")
		return
	}
	setUpConnectionStatus(mgr, reconciler)
}

// setUpConnectionStatus wires the status reconciler of BankConnections and
// ClusterBankConnections, beside the request reconciler whose readers and budgets it shares.
func setUpConnectionStatus(mgr manager.Manager, requests *internalcontroller.BankTokenRequestReconciler) {
	connectionMetrics := internalcontroller.NewConnectionMetrics()
	exitOn(connectionMetrics.Register(nil), "unable to register the connections' metrics")
	statusReconciler := internalcontroller.NewConnectionStatusReconciler(requests)
	statusReconciler.Metrics = connectionMetrics
	// Connections are few, and a status reconcile reads a few Secrets: two workers.
	exitOn(statusReconciler.SetupWithManager(mgr, controller.Options{MaxConcurrentReconciles: 2}),
		"unable to set up the connection status controller")
}

// warnAboutUnsafeSettings logs, at every start, each setting that weakens a protection.
func warnAboutUnsafeSettings(settings internalcontroller.Settings, security *securityFlags) {
	if !settings.CredentialsLabelRequired {
		setupLog.Info("WARNING: --credentials-label-required=false: whoever may create a BankTokenRequest can send any " +
			"Secret of their namespace to an endpoint of their choosing; label the credentials Secrets " +
			"tokens.banktoken.io/credentials=true and drop the flag")
	}
	if settings.AllowInsecureEndpoints {
		setupLog.Info("WARNING: http:// token endpoints are allowed (--allow-insecure-endpoints); never use this in production")
	}
	if settings.ClusterConnectionNamespace == "" {
		setupLog.Info("ClusterBankConnections are not served: --watch-namespaces confines the operator; give " +
			"--cluster-connection-namespace (and the right to list and watch ClusterBankConnections and Namespaces) to serve them")
	}
	if security.allowLoopback {
		setupLog.Info("WARNING: loopback token endpoints are allowed (--allow-loopback-endpoints); never use this in production")
	}
}
