package controller

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/net/http/httpproxy"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// managerProxy is the proxy the suite's manager sends calls through: none until a spec sets
// one, then chosen as HTTPS_PROXY would be (loopback, where the sandbox banks are, stays direct).
var managerProxy proxySetting

type proxySetting struct {
	proxyURL  atomic.Pointer[url.URL]
	mu        sync.Mutex
	consulted []string
}

// choose is the manager's ClientOptions.Proxy; it notes every URL it is asked about.
func (p *proxySetting) choose(target *url.URL) (*url.URL, error) {
	proxy := p.proxyURL.Load()
	if proxy == nil {
		return nil, nil
	}
	p.mu.Lock()
	p.consulted = append(p.consulted, target.String())
	p.mu.Unlock()
	rules := httpproxy.Config{HTTPSProxy: proxy.String(), HTTPProxy: proxy.String()}
	return rules.ProxyFunc()(target)
}

func (p *proxySetting) urlsConsulted() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.consulted...)
}

// refusingProxy is an HTTP proxy on loopback that counts the connections made to it and the
// requests it is asked for, and refuses them all: it never dials anything.
type refusingProxy struct {
	conns, requests atomic.Int32
}

// reached is how many connections and requests reached the proxy.
func (p *refusingProxy) reached() int32 { return p.conns.Load() + p.requests.Load() }

// startRefusingProxy starts a refusingProxy and has the manager use it until the spec ends.
func startRefusingProxy() *refusingProxy {
	p := &refusingProxy{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		http.Error(w, "this proxy refuses", http.StatusForbidden)
	}))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			p.conns.Add(1)
		}
	}
	srv.Start()
	DeferCleanup(srv.Close)
	proxyURL, err := url.Parse(srv.URL)
	Expect(err).NotTo(HaveOccurred())
	managerProxy.proxyURL.Store(proxyURL)
	DeferCleanup(func() { managerProxy.proxyURL.Store(nil) })
	return p
}

var _ = Describe("Behind an egress proxy", func() {
	It("refuses a metadata endpoint before the proxy is asked: Stalled, EndpointRefused, the proxy never reached", func() {
		proxy := startRefusingProxy()
		btr := applyBank(newNamespace(), providers.Banfico, func(b *tokensv1alpha1.BankTokenRequest) {
			b.Spec.Endpoint = "https://169.254.169.254/latest/meta-data/iam/security-credentials"
		})
		stalled := eventuallyStalled(btr, tokensv1alpha1.ReasonEndpointRefused, "169.254.169.254 is a cloud metadata address")
		Expect(stalled.Message).NotTo(ContainSubstring("dial"), "refused by the rule, before any connection")
		Expect(managerProxy.urlsConsulted()).To(ContainElement(HavePrefix("https://169.254.169.254/")),
			"the call is one the proxy would have carried")
		Consistently(proxy.reached).WithTimeout(time.Second).Should(BeZero(), "the proxy was reached")
	})
})
