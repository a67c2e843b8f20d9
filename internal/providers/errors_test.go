package providers_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// Secrets in the matrix's requests: every assertion checks that no message contains them.
const (
	matrixSecret   = "matrix-client-secret:&%+ ü-7"
	matrixPassword = "matrix-password-&%+-9"
)

type pki struct {
	ca        *sandbox.CertificateAuthority
	valid     tls.Certificate
	expired   tls.Certificate
	wrongHost tls.Certificate
	otherCA   tls.Certificate // signed by a CA the client does not trust
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	now := time.Now()
	ca, err := sandbox.NewCertificateAuthority("matrix CA", now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := sandbox.NewCertificateAuthority("untrusted CA", now)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *sandbox.CertificateAuthority, hosts []string, from, to time.Time) tls.Certificate {
		c, err := ca.IssueTLS(sandbox.Leaf{CommonName: "bank", Hosts: hosts, NotBefore: from, NotAfter: to})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	loopback := []string{"127.0.0.1", "localhost"}
	return &pki{
		ca:        ca,
		valid:     issue(ca, loopback, now.Add(-time.Hour), now.Add(time.Hour)),
		expired:   issue(ca, loopback, now.Add(-48*time.Hour), now.Add(-24*time.Hour)),
		wrongHost: issue(ca, []string{"bank.example"}, now.Add(-time.Hour), now.Add(time.Hour)),
		otherCA:   issue(other, loopback, now.Add(-time.Hour), now.Add(time.Hour)),
	}
}

// startTLS serves h with cert; cfg tweaks the server's TLS config.
func startTLS(t *testing.T, cert tls.Certificate, h http.Handler, cfg func(*tls.Config)) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if cfg != nil {
		cfg(srv.TLS)
	}
	srv.Config.ErrorLog = discardLogger()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func matrixRequest(endpoint string, caPEM []byte) providers.Request {
	return providers.Request{
		// MBANQ's tenant in the query: the one parameter an endpoint may carry, never shown.
		Provider:      providers.Mbanq,
		TokenEndpoint: endpoint + "/token?tenantIdentifier=matrix-query-value",
		GrantType:     providers.GrantPassword,
		Scope:         "read",
		Credentials: providers.Credentials{
			ClientID: "matrix-client", ClientSecret: matrixSecret,
			Username: "matrix-user", Password: matrixPassword,
		},
		TLS: providers.TLSMaterial{CABundle: caPEM},
	}
}

func reply(status int, header http.Header, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// hang never answers. It drains the body first: only then does net/http watch the
// connection and cancel the request's context when the client gives up.
var hang = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
})

type errorMatrixCase struct {
	name       string
	handler    http.Handler
	cert       *tls.Certificate
	serverTLS  func(*tls.Config)
	mutate     func(*providers.Request)
	timeout    time.Duration
	wantClass  providers.Class
	wantReason string
	wantStatus int
	wantText   string
}

// answerFailureCases are bad answers from a server the client trusts.
func answerFailureCases() []errorMatrixCase {
	json := http.Header{"Content-Type": {"application/json"}}
	html := http.Header{"Content-Type": {"text/html"}}
	// Some banks echo what they were sent: the matrix makes them echo our secrets.
	echo := "client_secret=" + matrixSecret + " password=" + matrixPassword

	return []errorMatrixCase{
		{name: "400 invalid_request echoing the secret", handler: reply(400, json, `{"error":"invalid_request","error_description":"`+echo+`"}`),
			wantClass: providers.ClassPermanent, wantReason: providers.ReasonInvalidRequest, wantStatus: 400, wantText: "invalid_request"},
		{name: "401 invalid_client", handler: reply(401, json, `{"error":"invalid_client"}`),
			wantClass: providers.ClassPermanent, wantReason: providers.ReasonInvalidCredentials, wantStatus: 401, wantText: "invalid_client"},
		{name: "403 with no body", handler: reply(403, nil, ``),
			wantClass: providers.ClassPermanent, wantReason: providers.ReasonAccessDenied, wantStatus: 403, wantText: "empty body"},
		{name: "429 with Retry-After", handler: reply(429, http.Header{"Retry-After": {"17"}}, `{"error":"slow down"}`),
			wantClass: providers.ClassRateLimited, wantReason: providers.ReasonRateLimited, wantStatus: 429},
		{name: "500 with an HTML page echoing the secret", handler: reply(500, html, "<html><body>"+echo+"</body></html>"),
			wantClass: providers.ClassTransient, wantReason: providers.ReasonServerError, wantStatus: 500, wantText: "HTML page"},
		{name: "503 without Retry-After", handler: reply(503, nil, `upstream connect error`),
			wantClass: providers.ClassTransient, wantReason: providers.ReasonServerError, wantStatus: 503, wantText: "not JSON"},
		{name: "200 with an HTML body", handler: reply(200, html, "<!DOCTYPE html><html>login "+echo+"</html>"),
			wantClass: providers.ClassTransient, wantReason: providers.ReasonInvalidResponse, wantStatus: 200, wantText: "HTML page"},
		{name: "200 with truncated JSON", handler: reply(200, json, `{"access_token":"abc","expires_in":36`),
			wantClass: providers.ClassTransient, wantReason: providers.ReasonInvalidResponse, wantStatus: 200, wantText: "malformed JSON"},
		{name: "200 with a 2 MiB body", handler: reply(200, json, `{"access_token":"`+strings.Repeat(matrixSecret, 2<<20/len(matrixSecret))+`"}`),
			wantClass: providers.ClassTransient, wantReason: providers.ReasonResponseTooLarge, wantStatus: 200, wantText: "more than 1048576 bytes"},
		{name: "a server that never answers", timeout: 300 * time.Millisecond,
			handler:   hang,
			wantClass: providers.ClassTransient, wantReason: providers.ReasonTimeout, wantText: "no answer within 300ms"},
		{name: "a redirect is not followed", handler: reply(307, http.Header{"Location": {"https://elsewhere.example/token?secret=matrix-query-value"}}, ``),
			wantClass: providers.ClassConfiguration, wantReason: providers.ReasonInvalidEndpoint, wantStatus: 307, wantText: "redirects are not followed"},
	}
}

// tlsFailureCases are TLS set-ups that fail, on either side.
func tlsFailureCases(p *pki) []errorMatrixCase {
	json := http.Header{"Content-Type": {"application/json"}}
	return []errorMatrixCase{
		{name: "a certificate from an unknown CA", cert: &p.otherCA, handler: reply(200, json, `{}`),
			wantClass: providers.ClassTransient, wantReason: providers.ReasonTLSError, wantText: "unknown authority"},
		{name: "an expired certificate", cert: &p.expired, handler: reply(200, json, `{}`),
			wantClass: providers.ClassTransient, wantReason: providers.ReasonTLSError, wantText: "expired"},
		{name: "a certificate for another host", cert: &p.wrongHost, handler: reply(200, json, `{}`),
			wantClass: providers.ClassConfiguration, wantReason: providers.ReasonTLSError, wantText: "not valid for this host"},
		{name: "a server demanding a client certificate we do not have", handler: reply(200, json, `{}`),
			serverTLS: func(c *tls.Config) { c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, p.ca.Pool() },
			wantClass: providers.ClassConfiguration, wantReason: providers.ReasonTLSError, wantText: "refused the TLS handshake"},
		{name: "a server that offers only TLS 1.1", handler: reply(200, json, `{}`),
			serverTLS: func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 },
			wantClass: providers.ClassConfiguration, wantReason: providers.ReasonTLSError, wantText: "TLS"},
		{name: "a CA bundle with no certificate", handler: reply(200, json, `{}`),
			mutate:    func(r *providers.Request) { r.TLS.CABundle = []byte("not a PEM bundle") },
			wantClass: providers.ClassConfiguration, wantReason: providers.ReasonInvalidTLSConfig, wantText: "no PEM certificate"},
		{name: "a client certificate without its key", handler: reply(200, json, `{}`),
			mutate:    func(r *providers.Request) { r.TLS.ClientCertificate = p.ca.CertPEM() },
			wantClass: providers.ClassConfiguration, wantReason: providers.ReasonInvalidTLSConfig, wantText: "both the certificate and its key"},
		{name: "a client key that does not match the certificate", handler: reply(200, json, `{}`),
			mutate: func(r *providers.Request) {
				cert, _, _ := p.ca.Issue(sandbox.Leaf{CommonName: "a", Client: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)})
				_, key, _ := p.ca.Issue(sandbox.Leaf{CommonName: "b", Client: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)})
				r.TLS.ClientCertificate, r.TLS.ClientKey = cert, providers.Secret(key)
			},
			wantClass: providers.ClassConfiguration, wantReason: providers.ReasonInvalidTLSConfig, wantText: "client certificate"},
		{name: "an expired client certificate", handler: reply(200, json, `{}`),
			mutate: func(r *providers.Request) {
				cert, key, _ := p.ca.Issue(sandbox.Leaf{CommonName: "old", Client: true, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
				r.TLS.ClientCertificate, r.TLS.ClientKey = cert, providers.Secret(key)
			},
			wantClass: providers.ClassConfiguration, wantReason: providers.ReasonInvalidTLSConfig, wantText: "client certificate expired"},
	}
}

func TestErrorMatrix(t *testing.T) {
	p := newPKI(t)
	cases := append(answerFailureCases(), tlsFailureCases(p)...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cert := p.valid
			if tc.cert != nil {
				cert = *tc.cert
			}
			var hits atomic.Int32
			handler := tc.handler
			srv := startTLS(t, cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				handler.ServeHTTP(w, r)
			}), tc.serverTLS)
			req := matrixRequest(srv.URL, p.ca.CertPEM())
			if tc.mutate != nil {
				tc.mutate(&req)
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			start := time.Now()
			_, err := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard(), Timeout: timeout}).Fetch(context.Background(), req)
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v (%T), want *providers.Error", err, err)
			}
			t.Logf("%s/%s: %s", pe.Class, pe.Reason, pe.Message)
			if pe.Class != tc.wantClass || pe.Reason != tc.wantReason || pe.StatusCode != tc.wantStatus {
				t.Errorf("got %s/%s/%d, want %s/%s/%d: %s", pe.Class, pe.Reason, pe.StatusCode, tc.wantClass, tc.wantReason, tc.wantStatus, pe.Message)
			}
			if !strings.Contains(pe.Message, tc.wantText) {
				t.Errorf("message %q does not say %q", pe.Message, tc.wantText)
			}
			for _, leak := range []string{matrixSecret, matrixPassword, "matrix-query-value"} {
				if strings.Contains(pe.Message, leak) {
					t.Errorf("message %q leaks %q", pe.Message, leak)
				}
			}
			if n := hits.Load(); n > 1 {
				t.Errorf("the endpoint was called %d times; want at most one call", n)
			}
			if elapsed := time.Since(start); elapsed > timeout+5*time.Second {
				t.Errorf("the call took %v, beyond its %v timeout", elapsed, timeout)
			}
		})
	}
}

func TestTransportFailures(t *testing.T) {
	p := newPKI(t)
	t.Run("connection refused is transient", func(t *testing.T) {
		_, err := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()}).Fetch(context.Background(), matrixRequest("https://"+refusedAddress(t), p.ca.CertPEM()))
		if c := providers.ClassOf(err); c != providers.ClassTransient || err.(*providers.Error).Reason != providers.ReasonEndpointUnreachable {
			t.Errorf("got %v: %v", c, err)
		}
	})
	t.Run("a plain-HTTP server on an https URL", func(t *testing.T) {
		srv := httptest.NewServer(reply(200, nil, `{}`))
		defer srv.Close()
		_, err := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()}).Fetch(context.Background(), matrixRequest(strings.Replace(srv.URL, "http:", "https:", 1), nil))
		var pe *providers.Error
		if !errors.As(err, &pe) || pe.Class != providers.ClassConfiguration || !strings.Contains(pe.Message, "does not speak TLS") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("http is allowed only when asked for", func(t *testing.T) {
		srv := httptest.NewServer(reply(200, nil, `{"access_token":"plain-token","expires_in":60}`))
		defer srv.Close()
		req := matrixRequest(srv.URL, nil)
		if _, err := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()}).Fetch(context.Background(), req); providers.ClassOf(err) != providers.ClassConfiguration {
			t.Fatalf("http without AllowInsecureHTTP: %v", err)
		}
		req.AllowInsecureHTTP = true
		tok, err := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()}).Fetch(context.Background(), req)
		if err != nil || tok.AccessToken.Reveal() != "plain-token" {
			t.Fatalf("http with AllowInsecureHTTP: %v", err)
		}
	})
	t.Run("a caller's canceled context stops the call", func(t *testing.T) {
		srv := startTLS(t, p.valid, hang, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard(), Timeout: time.Minute}).Fetch(ctx, matrixRequest(srv.URL, p.ca.CertPEM()))
		if providers.ClassOf(err) != providers.ClassTransient {
			t.Errorf("got %v", err)
		}
	})
}

func TestClientReusesConnectionsForTheSameTLSMaterial(t *testing.T) {
	p := newPKI(t)
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(reply(200, http.Header{"Content-Type": {"application/json"}}, `{"access_token":"t","expires_in":60}`))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.valid}}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()

	client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()})
	req := matrixRequest(srv.URL, p.ca.CertPEM())
	for i := range 3 {
		if _, err := client.Fetch(context.Background(), req); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 calls opened %d connections, want 1", n)
	}
	// Other TLS material (here: the same CA with a trailing newline) gets its own transport.
	req.TLS.CABundle = append(p.ca.CertPEM(), '\n')
	if _, err := client.Fetch(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("different TLS material shared a connection: %d connections, want 2", n)
	}
}
