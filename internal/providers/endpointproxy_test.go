package providers_test

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http/httpproxy"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// recordingProxy is an HTTP proxy on loopback that records every request it is asked for
// and every connection made to it. It refuses every request, unless tunnels are on: then a
// CONNECT is tunnelled to the asked port on 127.0.0.1, whatever host was asked for, so no
// test reaches beyond loopback.
type recordingProxy struct {
	srv     *httptest.Server
	tunnels bool
	conns   atomic.Int32
	mu      sync.Mutex
	asked   []string
}

func startRecordingProxy(t *testing.T, tunnels bool) *recordingProxy {
	p := &recordingProxy{tunnels: tunnels}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			p.conns.Add(1)
		}
	}
	p.srv.Start()
	t.Cleanup(p.srv.Close)
	return p
}

func (p *recordingProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.asked = append(p.asked, r.Method+" "+r.RequestURI)
	p.mu.Unlock()
	if !p.tunnels || r.Method != http.MethodConnect {
		http.Error(w, "this proxy refuses", http.StatusForbidden)
		return
	}
	_, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		http.Error(w, "no port", http.StatusBadRequest)
		return
	}
	upstream, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", port)) // loopback only
	if err != nil {
		http.Error(w, "cannot connect", http.StatusBadGateway)
		return
	}
	defer upstream.Close()
	client, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer client.Close()
	_, _ = io.WriteString(client, "HTTP/1.1 200 Connection established\r\n\r\n")
	go func() { _, _ = io.Copy(upstream, client) }()
	_, _ = io.Copy(client, upstream)
}

func (p *recordingProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.asked...)
}

// expectProxyUntouched checks that no connection, so not one byte, reached the proxy.
func (p *recordingProxy) expectUntouched(t *testing.T) {
	t.Helper()
	if asked, conns := p.requests(), p.conns.Load(); len(asked) != 0 || conns != 0 {
		t.Fatalf("the proxy was reached (%d connections) and asked for %q; a refused target must never reach it", conns, asked)
	}
}

// proxiedClient sends every call that the environment-style rules send to a proxy (all but
// loopback literals and localhost) to proxy, resolving names with dns.
func proxiedClient(guard *providers.EndpointGuard, dns *fakeDNS, proxy *recordingProxy) *providers.Client {
	rules := httpproxy.Config{HTTPSProxy: proxy.srv.URL, HTTPProxy: proxy.srv.URL}
	return providers.NewClient(providers.ClientOptions{Guard: guard, Resolver: dns.resolver(), Proxy: rules.ProxyFunc()})
}

func TestProxyNeverAskedForRefusedTarget(t *testing.T) {
	proxy := startRecordingProxy(t, false)
	dns := &fakeDNS{answers: map[string]netip.Addr{}}
	dns.set("metadata.bank.test", "169.254.169.254")
	dns.set("apiserver.bank.test", "10.0.0.1")
	guard := loopbackGuard()
	guard.SetClusterAPIServer([]netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:443")})
	client := proxiedClient(guard, dns, proxy)
	for _, c := range []struct{ endpoint, rule string }{
		{"https://169.254.169.254/latest/token", "169.254.169.254 is a cloud metadata address"},
		{"https://[fd20:ce::254]/token", "fd20:ce::254 is a cloud metadata address"},
		{"https://10.0.0.1/token", "10.0.0.1 is the cluster's apiserver"},
		{"https://metadata.bank.test/token", "169.254.169.254 is a cloud metadata address"},
		{"https://apiserver.bank.test:443/token", "10.0.0.1 is the cluster's apiserver"},
		{"http://metadata.bank.test:8080/token", "169.254.169.254 is a cloud metadata address"},
	} {
		_, err := client.Fetch(context.Background(), requestTo(c.endpoint))
		expectEndpointRefused(t, err, c.rule)
	}
	proxy.expectUntouched(t)
}

// A name the guard cannot resolve cannot be checked: it fails as unreachable, unsent.
func TestProxyNeverAskedForANameTheGuardCannotResolve(t *testing.T) {
	proxy := startRecordingProxy(t, false)
	client := proxiedClient(loopbackGuard(), &fakeDNS{answers: map[string]netip.Addr{}}, proxy)
	_, err := client.Fetch(context.Background(), requestTo("https://nowhere.bank.test/token"))
	var perr *providers.Error
	if !errors.As(err, &perr) || perr.Class != providers.ClassTransient || perr.Reason != providers.ReasonEndpointUnreachable || !perr.NotSent {
		t.Fatalf("got %v, want a transient EndpointUnreachable, not sent", err)
	}
	proxy.expectUntouched(t)
}

func TestProxyOnARefusedAddressIsNotDialled(t *testing.T) {
	proxy := startRecordingProxy(t, true)
	dns := &fakeDNS{answers: map[string]netip.Addr{}}
	dns.set("token.bank.test", "203.0.113.7") // admitted, and never dialled: the proxy is refused first
	_, err := proxiedClient(newGuard(t, providers.EndpointRules{}), dns, proxy).
		Fetch(context.Background(), requestTo("https://token.bank.test/token"))
	expectEndpointRefused(t, err, "127.0.0.1 is a loopback address")
	proxy.expectUntouched(t)
}

func TestProxyTunnelsACallToAnAdmittedTarget(t *testing.T) {
	bank := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"proxy-test-access","token_type":"Bearer","expires_in":600}`)
	}))
	t.Cleanup(bank.Close)
	proxy := startRecordingProxy(t, true)
	dns := &fakeDNS{answers: map[string]netip.Addr{}}
	dns.set("example.com", "127.0.0.1") // a name the test server's certificate holds
	_, port, _ := net.SplitHostPort(bank.Listener.Addr().String())
	req := requestTo("https://example.com:" + port + "/token")
	req.TLS.CABundle = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: bank.Certificate().Raw})
	if _, err := proxiedClient(loopbackGuard(), dns, proxy).Fetch(context.Background(), req); err != nil {
		t.Fatalf("a call to an admitted target through the proxy failed: %v", err)
	}
	if asked := proxy.requests(); len(asked) != 1 || asked[0] != "CONNECT example.com:"+port {
		t.Fatalf("the proxy was asked for %q, want one CONNECT example.com:%s", asked, port)
	}
}

func TestABadProxySettingFailsTheCallWithoutQuotingIt(t *testing.T) {
	// net/http's errors for a bad proxy URL quote it whole.
	badSetting := func(*url.URL) (*url.URL, error) {
		return nil, errors.New(`invalid proxy address "http://proxy-user:proxy-test-password@[not-a-host"`)
	}
	dns := &fakeDNS{answers: map[string]netip.Addr{}}
	client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard(), Resolver: dns.resolver(), Proxy: badSetting})
	_, err := client.Fetch(context.Background(), requestTo("https://token.bank.test/token"))
	var perr *providers.Error
	if !errors.As(err, &perr) || !perr.NotSent || !strings.Contains(perr.Message, "the proxy setting (HTTPS_PROXY or HTTP_PROXY) is not a valid proxy URL") {
		t.Fatalf("got %v, want an unsent call that names the bad proxy setting", err)
	}
	if strings.Contains(perr.Message, "proxy-test-password") {
		t.Fatal("the failure quotes the proxy setting, password and all")
	}
}
