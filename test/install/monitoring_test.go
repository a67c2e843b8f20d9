package install

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

const (
	alertsFile    = "config/prometheus/alerts.yaml"
	dashboardFile = "config/grafana/bank-token-operator.json"
)

// operatorMetricName matches every metric the manager exports under names of its own or of
// controller-runtime. test/alerts checks with Prometheus's parser that every selector in the
// alerts and the dashboard is matched by it, so scanning the files with it misses none.
var operatorMetricName = regexp.MustCompile(`\b(?:banktoken|controller_runtime|workqueue)_[a-z0-9_]+\b`)

func TestChartShipsTheAlertsAndTheDashboardOfConfig(t *testing.T) {
	if len(objectsOfKind(decodeObjects(t, helmTemplate(t)), "PrometheusRule")) != 0 {
		t.Error("the default render has a PrometheusRule; it needs the Prometheus Operator's CRD, so it is opt-in")
	}
	objects := decodeObjects(t, helmTemplate(t, "prometheusRule.enable=true", "grafanaDashboard.enable=true"))
	rule := findObject(t, objects, "PrometheusRule", helmRelease+"-alerts")
	var want any
	if err := yaml.Unmarshal(readRepoFile(t, alertsFile), &want); err != nil {
		t.Fatal(err)
	}
	if got, want := mustJSON(t, rule.Object["spec"]), mustJSON(t, want); got != want {
		t.Errorf("the PrometheusRule's spec is not %s (run make derived-manifests)", alertsFile)
	}
	dashboard := findObject(t, objects, "ConfigMap", helmRelease+"-dashboard")
	if dashboard.GetLabels()["grafana_dashboard"] != "1" {
		t.Errorf("dashboard ConfigMap labels %v: the Grafana sidecar looks for grafana_dashboard=1", dashboard.GetLabels())
	}
	data, _, _ := unstructured.NestedString(dashboard.Object, "data", "bank-token-operator.json")
	if data != strings.TrimRight(string(readRepoFile(t, dashboardFile)), "\n") {
		t.Errorf("the dashboard ConfigMap does not hold %s (run make derived-manifests)", dashboardFile)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Every metric the alerts and the dashboard read is one a real manager exports: the manager
// binary runs against a real kube-apiserver, obtains a token from a sandbox bank through a
// BankConnection (so that the connections' series exist: its call budget's and its own),
// and its metrics endpoint is scraped.
func TestAlertsAndDashboardUseOnlyMetricsTheManagerExports(t *testing.T) {
	exported := scrapeManagerWithOneToken(t)
	for _, file := range []string{alertsFile, dashboardFile} {
		for _, name := range referencedMetrics(t, file) {
			if !exported[name] {
				t.Errorf("%s uses %s, which the manager does not export", file, name)
			}
		}
	}
}

func referencedMetrics(t *testing.T, file string) []string {
	seen := map[string]bool{}
	for _, name := range operatorMetricName.FindAllString(string(readRepoFile(t, file)), -1) {
		seen[name] = true
	}
	if len(seen) < 5 {
		t.Fatalf("%s: found only %v; is the file what the test expects?", file, seen)
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func scrapeManagerWithOneToken(t *testing.T) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	cp, err := harness.StartControlPlane(harness.ControlPlaneOptions{KubeconfigPath: filepath.Join(dir, "kubeconfig"), KubeconfigUser: "monitoring-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	bank, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bank.Close)
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(dir, "manager")
	if err := harness.BuildManager(root, binary); err != nil {
		t.Fatal(err)
	}
	metricsAddress := freeLoopbackAddress(t)
	manager, err := harness.StartManagerProcess(harness.ManagerProcessOptions{Binary: binary, Kubeconfig: cp.Kubeconfig,
		LogPath: filepath.Join(dir, "manager.log"), Args: []string{"--metrics-bind-address=" + metricsAddress,
			// Plain HTTP on loopback: the names exported are the question here; the secure
			// path is proven by test/sharedcluster's metrics test.
			"--metrics-secure=false"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = manager.Stop(10 * time.Second) })
	if err := manager.WaitStarted(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	applyReadyRequestThroughAConnection(t, cp, bank)
	return scrapeSampleNames(t, "http://"+metricsAddress+"/metrics")
}

// applyReadyRequestThroughAConnection creates a BankConnection to the sandbox's Paymob and
// a request that names it, and waits for its token and for the connection's status.
func applyReadyRequestThroughAConnection(t *testing.T, cp *harness.ControlPlane, bank *sandbox.Server) {
	t.Helper()
	ctx := context.Background()
	if err := cp.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments"}}); err != nil {
		t.Fatal(err)
	}
	sandboxed := harness.NewSandboxRequest(bank, providers.Paymob, "payments", "paymob")
	connection := &tokensv1alpha1.BankConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "paymob"},
		Spec: tokensv1alpha1.BankConnectionSpec{BankClient: sandboxed.Request.Spec.BankClient}}
	request := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "paymob"},
		Spec: tokensv1alpha1.BankTokenRequestSpec{Scope: sandboxed.Request.Spec.Scope,
			ConnectionRef: &tokensv1alpha1.ConnectionReference{Name: connection.Name}}}
	for _, o := range []client.Object{sandboxed.Credentials, sandboxed.CABundle, connection, request} {
		if err := cp.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := harness.WaitForReady(ctx, cp.Client, request, metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued, time.Minute); err != nil {
		t.Fatal(err)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := cp.Client.Get(ctx, client.ObjectKeyFromObject(connection), connection)
		return err == nil && meta.IsStatusConditionTrue(connection.Status.Conditions, tokensv1alpha1.ConditionReady), nil
	})
	if err != nil {
		t.Fatalf("the BankConnection's status never said Ready: %v (status %+v)", err, connection.Status)
	}
}

func freeLoopbackAddress(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	return listener.Addr().String()
}

// scrapeSampleNames is the name of every sample the endpoint serves: a histogram's
// _bucket, _sum and _count, a summary's _sum and _count, as PromQL sees them.
func scrapeSampleNames(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for name, family := range families {
		names[name] = true
		switch family.GetType() {
		case dto.MetricType_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name+"_sum"], names[name+"_count"] = true, true
		}
	}
	if !names["banktoken_token_state"] {
		t.Fatal(fmt.Errorf("the scrape of %s has no banktoken_token_state: the manager reconciled nothing", url))
	}
	return names
}
