package sharedcluster

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// The metrics endpoint, served as the manager serves it in a cluster (HTTPS, authentication
// and authorization by the apiserver), answers a ServiceAccount bound to the shipped
// metrics-reader ClusterRole, refuses one that is not (403), and a caller with no token (401).
func TestMetricsAreServedOnlyToCallersTheMetricsReaderRoleAdmits(t *testing.T) {
	ca, err := sandbox.NewCertificateAuthority("metrics test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certDir := writeServingCertificate(t, ca)
	address := freeLoopbackAddress(t)
	startManager(t, "--metrics-bind-address="+address, "--metrics-cert-path="+certDir)

	namespace := createNamespace(t, "metrics")
	reader := serviceAccountToken(t, namespace, "prometheus")
	stranger := serviceAccountToken(t, namespace, "stranger")
	bindMetricsReader(t, namespace, "prometheus")

	scraper := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		// Verifies the certificate the manager was given, for the address it listens on.
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12},
	}}
	url := "https://" + address + "/metrics"
	waitFor(t, 30*time.Second, "the metrics endpoint to listen", func() bool {
		status, _ := scrape(t, scraper, url, "")
		return status != 0
	})
	for _, c := range []struct {
		who    string
		token  string
		status int
	}{{"no token", "", http.StatusUnauthorized}, {"a ServiceAccount without metrics-reader", stranger, http.StatusForbidden},
		{"a ServiceAccount bound to metrics-reader", reader, http.StatusOK}} {
		status, body := scrape(t, scraper, url, c.token)
		if status != c.status {
			t.Errorf("%s: %d, want %d", c.who, status, c.status)
		}
		if c.status == http.StatusOK && !strings.Contains(body, `controller_runtime_reconcile_total{controller="banktokenrequest"`) {
			t.Errorf("%s: the answer holds no controller metrics:\n%.300s", c.who, body)
		}
	}
}

// scrape GETs url with a bearer token ("" for none); status 0 means no answer.
func scrape(t *testing.T, c *http.Client, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// writeServingCertificate writes tls.crt and tls.key for 127.0.0.1, issued by ca, as a
// mounted Secret of cert-manager's would hold them.
func writeServingCertificate(t *testing.T, ca *sandbox.CertificateAuthority) string {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(sandbox.Leaf{CommonName: "metrics", Hosts: []string{"127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func freeLoopbackAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serviceAccountToken creates a ServiceAccount and returns a token for it from the
// TokenRequest API, as a projected token volume would hold one.
func serviceAccountToken(t *testing.T, namespace, name string) string {
	t.Helper()
	ctx := t.Context()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if err := world.ControlPlane.Client.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	clientset, err := kubernetes.NewForConfig(world.ControlPlane.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// bindMetricsReader creates the metrics-reader ClusterRole from config/rbac, as shipped, and
// binds it to the ServiceAccount.
func bindMetricsReader(t *testing.T, namespace, serviceAccount string) {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "config", "rbac", "metrics_reader_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(raw, role); err != nil {
		t.Fatal(err)
	}
	role.Name = fmt.Sprintf("%s-%s", namespace, role.Name)
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: serviceAccount}},
	}
	if err := world.ControlPlane.Client.Create(t.Context(), role); err != nil {
		t.Fatal(err)
	}
	if err := world.ControlPlane.Client.Create(t.Context(), binding); err != nil {
		t.Fatal(err)
	}
}
