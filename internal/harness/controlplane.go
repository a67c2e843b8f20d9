// Package harness is what the tests and the tools (make demo, make bench) share to run the
// operator for real: a local control plane with the CRD, the manager as its own process,
// the objects a BankTokenRequest for a sandbox bank needs, and waiting for its Ready
// condition. It returns errors rather than asserting, so that programs can use it too.
package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// ControlPlaneOptions say how to start a control plane; the zero value is envtest's
// defaults with the repository's CRD installed.
type ControlPlaneOptions struct {
	// AssetsDirectory holds etcd and kube-apiserver; empty: $KUBEBUILDER_ASSETS.
	AssetsDirectory string
	// CRDDirectory holds the CRD manifests to install; empty: the repository's.
	CRDDirectory string
	// WithoutCRD leaves the CRD out, for callers that install it themselves.
	WithoutCRD bool
	// AdmissionPlugins turns on kube-apiserver's default admission plugins, which envtest
	// turns off: a Pod must then name an existing ServiceAccount, as in a real cluster.
	AdmissionPlugins bool
	// ClientQPS and ClientBurst throttle the admin client; zero: envtest's.
	ClientQPS   float32
	ClientBurst int
	// KubeconfigPath, when set, is where a kubeconfig for a manager process (or a user's
	// kubectl) is written, as KubeconfigUser in system:masters.
	KubeconfigPath string
	KubeconfigUser string
	// RestartableAPIServer keeps kube-apiserver's certificates in a directory of the
	// harness's, so that StopAPIServer and StartAPIServer bring it back on the same port
	// with the same CA: kubeconfigs written before stay valid.
	RestartableAPIServer bool
}

// ControlPlane is a running etcd and kube-apiserver with an admin client.
type ControlPlane struct {
	Env *envtest.Environment
	// Config is the admin configuration envtest made, unthrottled by the options.
	Config *rest.Config
	// Client is an admin client that knows the core types and BankTokenRequest.
	Client client.Client
	// Kubeconfig is the path of the written kubeconfig, if one was asked for.
	Kubeconfig string
	// apiServerCertDir is removed at Stop; set with RestartableAPIServer.
	apiServerCertDir string
}

// StartControlPlane starts etcd and kube-apiserver; on any error nothing is left running.
func StartControlPlane(opts ControlPlaneOptions) (*ControlPlane, error) {
	env := &envtest.Environment{BinaryAssetsDirectory: opts.AssetsDirectory}
	if !opts.WithoutCRD {
		crds := opts.CRDDirectory
		if crds == "" {
			root, err := RepoRoot()
			if err != nil {
				return nil, err
			}
			crds = CRDDirectory(root)
		}
		env.CRDDirectoryPaths = []string{crds}
		env.ErrorIfCRDPathMissing = true
	}
	if opts.AdmissionPlugins {
		env.ControlPlane.GetAPIServer().Configure().Disable("disable-admission-plugins")
	}
	cp := &ControlPlane{Env: env}
	if opts.RestartableAPIServer {
		// envtest regenerates the certificates of a directory it made itself on restart.
		dir, err := os.MkdirTemp("", "harness-apiserver-certs-")
		if err != nil {
			return nil, err
		}
		cp.apiServerCertDir = dir
		env.ControlPlane.GetAPIServer().CertDir = dir
		// kube-apiserver drains open watches for a long while on SIGTERM: SIGKILL sooner.
		env.ControlPlane.GetAPIServer().StopTimeout = apiServerStopTimeout
	}
	cfg, err := env.Start()
	if err != nil {
		// A half-started control plane (etcd up, apiserver not) must not outlive the caller.
		_ = cp.Stop()
		return nil, fmt.Errorf("starting the control plane (KUBEBUILDER_ASSETS=%s): %w", os.Getenv("KUBEBUILDER_ASSETS"), err)
	}
	cp.Config = cfg
	if err := cp.connect(opts); err != nil {
		return nil, errors.Join(err, cp.Stop())
	}
	return cp, nil
}

func (cp *ControlPlane) connect(opts ControlPlaneOptions) error {
	clientConfig := rest.CopyConfig(cp.Config)
	if opts.ClientQPS > 0 {
		clientConfig.QPS, clientConfig.Burst = opts.ClientQPS, opts.ClientBurst
	}
	clientConfig.WarningHandler = rest.NoWarnings{}
	var err error
	if cp.Client, err = client.New(clientConfig, client.Options{Scheme: NewScheme()}); err != nil {
		return err
	}
	if opts.KubeconfigPath == "" {
		return nil
	}
	user, err := cp.Env.AddUser(envtest.User{Name: opts.KubeconfigUser, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("creating user %s: %w", opts.KubeconfigUser, err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	if err := os.WriteFile(opts.KubeconfigPath, kubeconfig, 0o600); err != nil {
		return err
	}
	cp.Kubeconfig = opts.KubeconfigPath
	return nil
}

// Stop stops kube-apiserver and etcd and removes the kubeconfig it wrote.
func (cp *ControlPlane) Stop() error {
	if cp.Kubeconfig != "" {
		_ = os.Remove(cp.Kubeconfig)
	}
	err := cp.Env.Stop()
	if cp.apiServerCertDir != "" {
		_ = os.RemoveAll(cp.apiServerCertDir)
	}
	return err
}

// apiServerStopTimeout is how long a restartable kube-apiserver gets to stop on SIGTERM.
const apiServerStopTimeout = 5 * time.Second

// StopAPIServer stops kube-apiserver alone (SIGTERM, SIGKILL after a few seconds) and
// waits until its port refuses connections; etcd keeps the cluster's state.
func (cp *ControlPlane) StopAPIServer() error {
	if cp.apiServerCertDir == "" {
		return errors.New("the control plane was not started with RestartableAPIServer")
	}
	apiServer := cp.Env.ControlPlane.GetAPIServer()
	// A timeout here means envtest sent SIGKILL: the port check below says whether it worked.
	stopErr := apiServer.Stop()
	address := apiServer.SecureServing.ListenAddr.HostPort()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", address, time.Second)
		if err != nil {
			return nil
		}
		conn.Close()
	}
	return fmt.Errorf("kube-apiserver still listens on %s after being stopped (%v)", address, stopErr)
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the same port and
// with the same certificates, and waits until it is healthy.
func (cp *ControlPlane) StartAPIServer() error {
	return cp.Env.ControlPlane.GetAPIServer().Start()
}

// NewScheme knows the core Kubernetes types and BankTokenRequest.
func NewScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	// Both only register static types: an error here is a programming error.
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), tokensv1alpha1.AddToScheme(scheme)); err != nil {
		panic(err)
	}
	return scheme
}

// RepoRoot is the directory of go.mod, found upwards from the working directory, so that
// tests (run in their package's directory) and tools (run anywhere inside) agree on it.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from inside the repository")
		}
		dir = parent
	}
}

// CRDDirectory holds the generated CRD manifests.
func CRDDirectory(root string) string {
	return filepath.Join(root, "config", "crd", "bases")
}
