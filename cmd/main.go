// Command manager runs the bank-token-operator controller manager.
package main

import (
	"context"
	"flag"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	internalcontroller "github.com/banktoken/bank-token-operator/internal/controller"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(tokensv1alpha1.AddToScheme(scheme))
}

func main() {
	var (
		metrics              metricsFlags
		probeAddr            string
		leaderElect          bool
		leaderElectNamespace string
		watchNamespaces      string
		allowInsecure        bool
		workers              int
		kubeAPIQPS           float64
		kubeAPIBurst         int
		requestTimeout       time.Duration
		defaultLifetime      time.Duration
		propagationDelay     time.Duration
		issueEvents          bool
		leaseDuration        time.Duration
		renewDeadline        time.Duration
		retryPeriod          time.Duration
		callsPerNamespace    int
		callReserve          int
		minRenewalInterval   time.Duration
	)
	// Leader election is on by default when running inside a cluster, where more than one
	// replica may run; out of cluster (make run, make demo) it is off by default.
	_, inClusterErr := rest.InClusterConfig()
	metrics.bind(flag.CommandLine)
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the health probes bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", inClusterErr == nil,
		"Enable leader election, so that only one replica reconciles at a time. Default: on in a cluster, off outside.")
	flag.StringVar(&leaderElectNamespace, "leader-election-namespace", "",
		"Namespace of the leader election lease. Default: the namespace the manager runs in.")
	// client-go's defaults; shorter ones let a standby take over sooner after a leader dies
	// without releasing its lease (make chaos kills leaders).
	flag.DurationVar(&leaseDuration, "leader-election-lease-duration", 15*time.Second,
		"How long a standby waits after the leader's last renewal before taking the lease.")
	flag.DurationVar(&renewDeadline, "leader-election-renew-deadline", 10*time.Second,
		"How long the leader retries renewing its lease before giving up leadership.")
	flag.DurationVar(&retryPeriod, "leader-election-retry-period", 2*time.Second,
		"How often leader election clients try to acquire or renew the lease.")
	flag.StringVar(&watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces to watch. Default: all namespaces.")
	flag.BoolVar(&allowInsecure, "allow-insecure-endpoints", false,
		"Accept http:// token endpoints. For tests and local sandboxes only: credentials cross the network in clear text.")
	// Defaults measured with make bench on 2 cores: issuing is bound by client-side rate
	// limiting (a first issue reads three Secrets), not by CPU.
	flag.IntVar(&workers, "max-concurrent-reconciles", 16, "How many BankTokenRequests are reconciled at once.")
	flag.Float64Var(&kubeAPIQPS, "kube-api-qps", 200, "Queries per second the manager may make to the apiserver.")
	flag.IntVar(&kubeAPIBurst, "kube-api-burst", 1000, "Burst of queries the manager may make to the apiserver.")
	flag.BoolVar(&issueEvents, "issue-events", false,
		"Emit TokenIssued/TokenRefreshed events for routine issues (one more apiserver write per token). "+
			"Failures, recoveries and rejected refresh tokens always emit events.")
	flag.DurationVar(&requestTimeout, "token-request-timeout", 30*time.Second,
		"Timeout of one call to a token endpoint. On shutdown the manager waits this long plus 15s for renewals under way; "+
			"keep the Pod's terminationGracePeriodSeconds (60 by default) above that.")
	flag.DurationVar(&defaultLifetime, "default-token-lifetime", time.Hour,
		"Lifetime assumed for a token whose response states none and which is not a JWT with exp.")
	flag.DurationVar(&propagationDelay, "secret-propagation-delay", internalcontroller.DefaultSecretPropagationDelay,
		"How late a workload may see a renewed output Secret (a mounted Secret syncs after the kubelet's sync period "+
			"plus its cache TTL). The token a renewal replaces stays usable at the bank at least this long, and renewal "+
			"leaves this much before expiry when the lifetime allows.")
	flag.IntVar(&callsPerNamespace, "token-calls-per-namespace", 0,
		"How many token calls one namespace may have under way at once; its other due renewals wait, so that its hung "+
			"endpoints cannot take every worker. Default (0): a quarter of --max-concurrent-reconciles, at least 1.")
	flag.IntVar(&callReserve, "token-call-reserve", -1,
		"How many workers only a namespace with no token call under way may take: one with a call under way starts "+
			"another only while fewer than --max-concurrent-reconciles minus this are under way in all, so that as many "+
			"namespaces as this whose endpoints hang still leave a worker for another namespace's call. "+
			"Default (-1): half of --max-concurrent-reconciles; 0: no reserve.")
	flag.DurationVar(&minRenewalInterval, "min-renewal-interval", internalcontroller.DefaultMinRenewalInterval,
		"The least time between two renewals of a token, whatever lifetime the bank gives it. A token that lives less "+
			"is expired in between, and its Ready condition says so.")
	security := bindSecurityFlags(flag.CommandLine)
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog := ctrl.Log.WithName("setup")

	guard, err := security.guard()
	if err != nil {
		setupLog.Error(err, "invalid endpoint guard flags")
		os.Exit(1)
	}

	restConfig, err := ctrl.GetConfig()
	if err != nil {
		setupLog.Error(err, "unable to load a kubeconfig")
		os.Exit(1)
	}

	restConfig.QPS = float32(kubeAPIQPS)
	restConfig.Burst = kubeAPIBurst

	var namespaces []string
	for _, ns := range strings.Split(watchNamespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			namespaces = append(namespaces, ns)
		}
	}
	options := internalcontroller.ManagerOptions(scheme, namespaces)
	metricsOptions, metricsCertWatcher, err := metrics.serverOptions()
	if err != nil {
		setupLog.Error(err, "unable to load the metrics server's certificate")
		os.Exit(1)
	}
	options.Metrics = metricsOptions
	options.HealthProbeBindAddress = probeAddr
	options.LeaderElection = leaderElect
	options.LeaderElectionID = "bank-token-operator.tokens.banktoken.io"
	options.LeaderElectionNamespace = leaderElectNamespace
	options.LeaseDuration, options.RenewDeadline, options.RetryPeriod = &leaseDuration, &renewDeadline, &retryPeriod
	// Hand the lease over at once on a clean shutdown rather than waiting for it to expire.
	options.LeaderElectionReleaseOnCancel = true
	// A renewal under way when the manager stops is finished (a token call cut off after
	// it was sent spends its refresh token): wait longer than one token call. The Pod's
	// grace period (60 s) is longer still.
	options.GracefulShutdownTimeout = ptr.To(requestTimeout + 15*time.Second)
	mgr, err := ctrl.NewManager(restConfig, options)
	if err != nil {
		setupLog.Error(err, "unable to create the manager")
		os.Exit(1)
	}

	if metricsCertWatcher != nil {
		if err := mgr.Add(metricsCertWatcher); err != nil {
			setupLog.Error(err, "unable to watch the metrics server's certificate")
			os.Exit(1)
		}
	}
	tokenMetrics := internalcontroller.NewMetrics()
	if err := tokenMetrics.Register(nil); err != nil {
		setupLog.Error(err, "unable to register metrics")
		os.Exit(1)
	}
	// One clock for every decision: the reconciler's and the token client's.
	reconciler := internalcontroller.NewReconciler(mgr, nil)
	tokenClient := providers.NewClient(providers.ClientOptions{Timeout: requestTimeout, Clock: reconciler.Clock, Guard: guard})
	reconciler.Fetcher, reconciler.Revoker = tokenClient, tokenClient
	reconciler.CredentialsLabelRequired = security.credentialsLabelRequired
	if err := internalcontroller.GuardAPIServerAddresses(context.Background(), mgr, guard); err != nil {
		setupLog.Error(err, "unable to keep the apiserver's addresses guarded")
		os.Exit(1)
	}
	reconciler.Metrics = tokenMetrics
	reconciler.AllowInsecureEndpoints = allowInsecure
	reconciler.DefaultTokenLifetime = defaultLifetime
	reconciler.SecretPropagationDelay = propagationDelay
	reconciler.IssueEvents = issueEvents
	reconciler.TokenCallsPerNamespace = callsPerNamespace
	reconciler.TokenCallReserve = callReserve
	reconciler.MinRenewalInterval = minRenewalInterval
	if err := reconciler.SetupWithManager(context.Background(), mgr, controller.Options{MaxConcurrentReconciles: workers}); err != nil {
		setupLog.Error(err, "unable to set up the BankTokenRequest controller")
		os.Exit(1)
	}
	if allowInsecure {
		setupLog.Info("WARNING: http:// token endpoints are allowed (--allow-insecure-endpoints); never use this in production")
	}
	if security.allowLoopback {
		setupLog.Info("WARNING: loopback token endpoints are allowed (--allow-loopback-endpoints); never use this in production")
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up the ready check")
		os.Exit(1)
	}

	setupLog.Info("starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "problem running manager")
		os.Exit(1)
	}
}
