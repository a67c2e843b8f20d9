package sharedcluster

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

const (
	// hostileResources point at an endpoint that never answers: five times the workers.
	hostileResources = 20
	workers          = 4
	// victimLifetime is the token lifetime of the one resource in the other namespace: far
	// shorter than one hung call (--token-request-timeout, 30 s by default).
	victimLifetime = 9 * time.Second
	victimRenewals = 4
)

// With 4 workers, 20 resources in one namespace whose endpoint accepts connections and never
// answers (each call holds its worker for the default 30 s timeout) must not delay a due
// renewal in another namespace: its 9 s token is renewed before it expires, every time.
func TestHungEndpointsInOneNamespaceDoNotDelayAnotherNamespacesRenewals(t *testing.T) {
	ctx := t.Context()
	bank, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bank.Close()
	victimBank := providers.Paymob
	bank.SetLifetime(victimBank, victimLifetime)
	hung := startHungEndpoint(t, bank.CertificateAuthority())

	hostile, victim := createNamespace(t, "hostile"), createNamespace(t, "victim")
	// The hostile resources are there first, so that they take every worker at once.
	for i := range hostileResources {
		req := harness.NewSandboxRequest(bank, providers.Mbanq, hostile, fmt.Sprintf("hung-%02d", i))
		req.Request.Spec.Endpoint = hung.url
		if err := req.Apply(ctx, world.cp.Client); err != nil {
			t.Fatal(err)
		}
	}
	started := time.Now()
	startManager(t, fmt.Sprintf("--max-concurrent-reconciles=%d", workers),
		"--secret-propagation-delay=2s", "--min-renewal-interval=1s")
	waitFor(t, 20*time.Second, "the hung endpoint to hold calls", func() bool { return hung.accepted() >= 1 })

	req := harness.NewSandboxRequest(bank, victimBank, victim, "victim")
	if err := req.Apply(ctx, world.cp.Client); err != nil {
		t.Fatal(err)
	}
	if _, err := harness.WaitForReady(ctx, world.cp.Client, req.Request, metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	w := &tokenWatch{bank: bank, bankName: victimBank, key: types.NamespacedName{Namespace: victim, Name: req.Request.Name}}
	w.run(t, victimRenewals, victimLifetime*time.Duration(victimRenewals+2))
	t.Logf("victim: %d renewals of a %s token, %d checks, the bank refused none; hung endpoint: %d connections held",
		w.renewals, victimLifetime, w.checks, hung.accepted())
	// Each call lasts 30 s: until then, every connection held is a call under way.
	if got := hung.accepted(); got < 1 || (time.Since(started) < 30*time.Second && got > 1) {
		t.Fatalf("the hung endpoint held %d connections, want the hostile namespace's one call under way (its cap with %d workers)", got, workers)
	}
	// Closing the hung connections ends the calls under way, so that the manager stops at once.
	hung.close()
}

// tokenWatch follows one resource's output Secret and checks, every 100 ms, that the token
// in it is not expired and that the bank still accepts it.
type tokenWatch struct {
	bank     *sandbox.Server
	bankName providers.Name
	key      types.NamespacedName

	renewals, checks int
}

func (w *tokenWatch) run(t *testing.T, renewals int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for w.renewals < renewals {
		if time.Now().After(deadline) {
			t.Fatalf("%d renewals within %s, want %d", w.renewals, timeout, renewals)
		}
		secret := &corev1.Secret{}
		if err := world.cp.Client.Get(t.Context(), types.NamespacedName{Namespace: w.key.Namespace, Name: w.key.Name}, secret); err != nil {
			t.Fatal(err)
		}
		token := string(secret.Data[tokensv1alpha1.SecretKeyAccessToken])
		expiresAt, err := time.Parse(time.RFC3339, string(secret.Data[tokensv1alpha1.SecretKeyExpiresAt]))
		if err != nil {
			t.Fatalf("output Secret's expires_at: %v", err)
		}
		if now := time.Now(); !now.Before(expiresAt) || !w.bank.AccessTokenValid(w.bankName, token) {
			t.Fatalf("after %d renewals the token in the output Secret expired at %s (now %s): its renewal was delayed",
				w.renewals, expiresAt.Format(time.RFC3339), now.Format(time.RFC3339Nano))
		}
		if last != "" && token != last {
			w.renewals++
		}
		last = token
		w.checks++
		time.Sleep(100 * time.Millisecond)
	}
}

// hungEndpoint accepts connections on loopback and completes the TLS handshake with a
// certificate of the sandbox's CA, which the requests trust, then never answers: every call
// to it lasts the manager's whole token-request timeout (a handshake left unanswered would
// end sooner, at net/http's TLS handshake timeout).
type hungEndpoint struct {
	url      string
	listener net.Listener
	mu       sync.Mutex
	conns    []net.Conn
	closed   bool
}

func startHungEndpoint(t *testing.T, ca *sandbox.CertificateAuthority) *hungEndpoint {
	t.Helper()
	cert, err := ca.IssueTLS(sandbox.Leaf{CommonName: "hung-bank", Hosts: []string{"127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	h := &hungEndpoint{url: "https://" + l.Addr().String() + "/token", listener: l}
	go h.accept()
	t.Cleanup(h.close)
	return h
}

func (h *hungEndpoint) accept() {
	for {
		c, err := h.listener.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		if h.closed {
			c.Close()
		} else {
			h.conns = append(h.conns, c)
			go func() { _ = c.(*tls.Conn).Handshake() }()
		}
		h.mu.Unlock()
	}
}

func (h *hungEndpoint) accepted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

func (h *hungEndpoint) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	h.listener.Close()
	for _, c := range h.conns {
		c.Close()
	}
}

func createNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := world.cp.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func waitFor(t *testing.T, timeout time.Duration, what string, done func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !done(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}
