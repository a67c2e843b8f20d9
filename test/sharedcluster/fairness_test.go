package sharedcluster

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
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
	// victimLifetime is the token lifetime of the one resource in the other namespace: far
	// shorter than one hung call.
	victimLifetime = 9 * time.Second
	victimBank     = providers.Paymob
	// tokenRequestTimeout is how long each call to the hung endpoint holds its worker.
	tokenRequestTimeout = 30 * time.Second
)

// hangingNamespaces is a shared cluster in which some namespaces' every endpoint accepts
// connections and never answers, and another namespace asks for a token once their calls
// hold what workers the manager lets them.
type hangingNamespaces struct {
	namespaces, resourcesEach int
	// workers is --max-concurrent-reconciles; the cap per namespace (a quarter) and the
	// reserve (half) are the defaults.
	workers int
	// heldAtMost is how many workers the hanging namespaces' calls may hold (package tokencalls):
	// min(namespaces*cap, workers-reserve-1+namespaces).
	heldAtMost int
	// renewals of the other namespace's 9 s token to watch after its first.
	renewals int
}

// Namespaces whose every endpoint hangs (each call holds its worker for the whole token
// timeout) must not delay another namespace's token: its first arrives within half a token
// timeout, so before any hung call could end and free a worker, and its renewals come before
// its 9 s token expires. One namespace is held by its cap. Many are held by the reserve (8
// of 16 workers only for a namespace's first call): without it, four namespaces at their cap
// of 4 hold every worker, and the token waits about a token timeout.
func TestHungEndpointsInOtherNamespacesDoNotDelayANamespacesTokens(t *testing.T) {
	for _, c := range []hangingNamespaces{
		{namespaces: 1, resourcesEach: 20, workers: 4, heldAtMost: 1, renewals: 4},
		{namespaces: 4, resourcesEach: 6, workers: 16, heldAtMost: 11},
		{namespaces: 8, resourcesEach: 6, workers: 16, heldAtMost: 15},
	} {
		t.Run(fmt.Sprintf("%d hanging namespaces, %d workers", c.namespaces, c.workers), c.run)
	}
}

func (c hangingNamespaces) run(t *testing.T) {
	ctx := t.Context()
	bank, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bank.Close()
	bank.SetLifetime(victimBank, victimLifetime)
	hung := startHungEndpoint(t, bank.CertificateAuthority())
	// The hanging namespaces' resources are there first, so that they take workers at once.
	hanging, victim := c.createHanging(t, bank, hung), createNamespace(t, "victim")
	started := time.Now()
	startManager(t, fmt.Sprintf("--max-concurrent-reconciles=%d", c.workers), "--token-request-timeout="+tokenRequestTimeout.String(),
		"--watch-namespaces="+strings.Join(append(hanging, victim), ","), "--secret-propagation-delay=2s", "--min-renewal-interval=1s")
	// Run before the manager is stopped, as registered after it, also when the test fails:
	// closing the hung connections ends the calls under way, so that it stops at once.
	t.Cleanup(hung.close)
	held := hungCallsSettled(t, hung, c.namespaces)

	req := harness.NewSandboxRequest(bank, victimBank, victim, "victim")
	applied := time.Now()
	if err := req.Apply(ctx, world.ControlPlane.Client); err != nil {
		t.Fatal(err)
	}
	// Waited for past the bound, so that a failure says how long the token took.
	if _, err := harness.WaitForReady(ctx, world.ControlPlane.Client, req.Request, metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued, tokenRequestTimeout+15*time.Second); err != nil {
		t.Fatal(err)
	}
	firstToken := time.Since(applied)
	t.Logf("the other namespace's first token took %s, with %d hung calls under way", firstToken.Round(time.Millisecond), held)
	if firstToken > tokenRequestTimeout/2 {
		t.Fatalf("the other namespace's first token took %s, want within half a token timeout (%s): it waited for a hung call to end",
			firstToken.Round(time.Millisecond), tokenRequestTimeout/2)
	}
	if held > c.heldAtMost {
		t.Fatalf("%d namespaces that hang held %d workers, want at most %d", c.namespaces, held, c.heldAtMost)
	}
	if c.renewals > 0 {
		w := &tokenWatch{bank: bank, bankName: victimBank, key: types.NamespacedName{Namespace: victim, Name: req.Request.Name}}
		w.run(t, c.renewals, victimLifetime*time.Duration(c.renewals+2))
		t.Logf("%d renewals of a %s token, %d checks, the bank refused none", w.renewals, victimLifetime, w.checks)
	}
	// Until the first hung call could end, every connection held is a call under way.
	if got := hung.accepted(); time.Since(started) < tokenRequestTimeout && got > c.heldAtMost {
		t.Fatalf("%d namespaces that hang held %d workers, want at most %d", c.namespaces, got, c.heldAtMost)
	}
}

// createHanging creates the hanging namespaces and their resources, and returns the
// namespaces.
func (c hangingNamespaces) createHanging(t *testing.T, bank *sandbox.Server, hung *hungEndpoint) []string {
	t.Helper()
	var namespaces []string
	for range c.namespaces {
		namespace := createNamespace(t, "hanging")
		for i := range c.resourcesEach {
			req := harness.NewSandboxRequest(bank, providers.Mbanq, namespace, fmt.Sprintf("hung-%02d", i))
			req.Request.Spec.Endpoint = hung.url
			if err := req.Apply(t.Context(), world.ControlPlane.Client); err != nil {
				t.Fatal(err)
			}
		}
		namespaces = append(namespaces, namespace)
	}
	return namespaces
}

// hungCallsSettled waits until the hung endpoint holds at least atLeast calls and no new one
// has come for a second (every call to it lasts a token timeout, so each connection held is
// a call under way), and returns how many it holds.
func hungCallsSettled(t *testing.T, hung *hungEndpoint, atLeast int) int {
	t.Helper()
	held, since := -1, time.Now()
	waitFor(t, 20*time.Second, "the hung endpoint's calls to settle", func() bool {
		if n := hung.accepted(); n != held {
			held, since = n, time.Now()
		}
		return held >= atLeast && time.Since(since) >= time.Second
	})
	return held
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
		if err := world.ControlPlane.Client.Get(t.Context(), types.NamespacedName{Namespace: w.key.Namespace, Name: w.key.Name}, secret); err != nil {
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
	if err := world.ControlPlane.Client.Create(t.Context(), ns); err != nil {
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
