package providers

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxCachedTransports bounds the cache: rotated certificates must not pile up forever.
const maxCachedTransports = 64

// transportKey is a hash of the TLS material, so the cache never holds a key in the clear
// as a map key.
type transportKey [sha256.Size]byte

func keyOf(m TLSMaterial) transportKey {
	h := sha256.New()
	for _, part := range [][]byte{m.CABundle, m.ClientCertificate, []byte(m.ClientKey.Reveal())} {
		// Length-prefixed, so moving bytes between fields changes the key.
		_ = binary.Write(h, binary.BigEndian, uint64(len(part)))
		h.Write(part)
	}
	var k transportKey
	copy(k[:], h.Sum(nil))
	return k
}

type cachedTransport struct {
	transport *http.Transport
	// clientCertNotAfter is zero without a client certificate.
	clientCertNotAfter time.Time
	lastUsed           uint64
}

// transportCache holds one *http.Transport per distinct TLS material, so connections
// (and TLS sessions) are reused across calls.
type transportCache struct {
	// guard checks every address dialled; resolver (nil: the system's) finds them.
	guard    *EndpointGuard
	resolver *net.Resolver
	// proxy chooses the proxy for a URL, nil for none (the environment's, by default).
	proxy func(*url.URL) (*url.URL, error)

	mu      sync.Mutex
	clock   uint64
	entries map[transportKey]*cachedTransport
}

func (tc *transportCache) get(m TLSMaterial) (*cachedTransport, *Error) {
	key := keyOf(m)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.clock++
	if ct, ok := tc.entries[key]; ok {
		ct.lastUsed = tc.clock
		return ct, nil
	}
	ct, err := newTransport(m, tc.dialer(), tc.checkedProxy)
	if err != nil {
		return nil, err
	}
	if tc.entries == nil {
		tc.entries = map[transportKey]*cachedTransport{}
	}
	if len(tc.entries) >= maxCachedTransports {
		tc.evictLeastRecentlyUsed()
	}
	ct.lastUsed = tc.clock
	tc.entries[key] = ct
	return ct, nil
}

func (tc *transportCache) evictLeastRecentlyUsed() {
	var oldest transportKey
	var oldestUse uint64
	first := true
	for k, ct := range tc.entries {
		if first || ct.lastUsed < oldestUse {
			oldest, oldestUse, first = k, ct.lastUsed, false
		}
	}
	if ct, ok := tc.entries[oldest]; ok {
		ct.transport.CloseIdleConnections()
		delete(tc.entries, oldest)
	}
}

func (tc *transportCache) closeIdle() {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for _, ct := range tc.entries {
		ct.transport.CloseIdleConnections()
	}
}

// dialer checks each address it dials with the guard: after resolution, so a name cannot
// hide a refused address, and on every connection, the proxy's included.
func (tc *transportCache) dialer() *net.Dialer {
	return &net.Dialer{
		Timeout:        10 * time.Second,
		KeepAlive:      30 * time.Second,
		Resolver:       tc.resolver,
		ControlContext: tc.guard.control,
	}
}

// checkedProxy is the transports' Proxy: net/http calls it before any connection. Through a
// proxy the dialer sees only the proxy's address, and the proxy resolves and connects on its
// own, so the call's target is checked here first; a refused one never reaches the proxy.
func (tc *transportCache) checkedProxy(req *http.Request) (*url.URL, error) {
	if tc.proxy == nil {
		return nil, nil
	}
	proxy, err := tc.proxy(req.URL)
	if err != nil {
		// The setting may hold the proxy's password: say what is wrong without quoting it.
		return nil, errors.New("the proxy setting (HTTPS_PROXY or HTTP_PROXY) is not a valid proxy URL")
	}
	if proxy == nil {
		return nil, nil // a direct call: the dialer checks every address
	}
	if err := tc.guard.checkTarget(req.Context(), tc.resolver, req.URL); err != nil {
		return nil, err
	}
	return proxy, nil
}

func newTransport(m TLSMaterial, dialer *net.Dialer, proxy func(*http.Request) (*url.URL, error)) (*cachedTransport, *Error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(m.CABundle) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(m.CABundle) {
			return nil, configError(ReasonInvalidTLSConfig, "the CA bundle holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	ct := &cachedTransport{}
	if len(m.ClientCertificate) > 0 || !m.ClientKey.IsZero() {
		if len(m.ClientCertificate) == 0 || m.ClientKey.IsZero() {
			return nil, configError(ReasonInvalidTLSConfig, "a client certificate needs both the certificate and its key")
		}
		pair, err := tls.X509KeyPair(m.ClientCertificate, []byte(m.ClientKey.Reveal()))
		if err != nil {
			// crypto/tls's message names the problem, never the key material.
			return nil, configError(ReasonInvalidTLSConfig, "client certificate: %v", err)
		}
		if pair.Leaf != nil {
			ct.clientCertNotAfter = pair.Leaf.NotAfter
		}
		// Always present the certificate: a bank's gateway may not list our issuer in
		// its CertificateRequest, and the bank (not us) should decide whether it is good.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	ct.transport = &http.Transport{
		Proxy:                 proxy,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       cfg,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// A token answer's headers are a few hundred bytes; Go's default (about 10 MiB) would
		// let a tenant's endpoint hold that much memory per call in flight.
		MaxResponseHeaderBytes: MaxResponseHeaderBytes,
	}
	return ct, nil
}

// refused reports an endpoint the guard refused: a configuration failure that names the
// rule, for no connection was made.
func (c *call) refused(err *EndpointRefusedError) *Error {
	e := configError(ReasonEndpointRefused, "%s is refused: %s", c.where(), err.Rule)
	e.NotSent = true
	return e
}

// transportFailure classifies an error from the HTTP round trip (no response received).
func (c *call) transportFailure(err error, timeout time.Duration, m masker) *Error {
	where := c.where()
	// url.Error repeats the full URL, query string included: keep only its cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	cause := m.cleanDescription(err.Error())
	var refused *EndpointRefusedError
	if errors.As(err, &refused) {
		return c.refused(refused)
	}
	e := func(class Class, reason, format string, args ...any) *Error {
		return newError(class, reason, 0, "%s: %s (%s)", where, fmt.Sprintf(format, args...), cause)
	}

	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		opErr            *net.OpError
		recordHeader     tls.RecordHeaderError
		netErr           net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return e(ClassTransient, ReasonTimeout, "no answer within %s", timeout)
	case errors.Is(err, context.Canceled):
		return e(ClassTransient, ReasonEndpointUnreachable, "the call was canceled")
	case errors.As(err, &unknownAuthority):
		// Transient, not Configuration: a wrong CA bundle is fixed by the user (a change that
		// is retried at once), but a bank that rotated to a new chain fixes it on its own,
		// and the held token must not expire for want of a retry (make chaos, unknown CA).
		return e(ClassTransient, ReasonTLSError, "the server certificate is signed by an unknown authority; set the CA bundle")
	case errors.As(err, &hostname):
		return e(ClassConfiguration, ReasonTLSError, "the server certificate is not valid for this host")
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		// The bank's certificate is out of date: theirs to renew, so retry with backoff.
		return e(ClassTransient, ReasonTLSError, "the server certificate is expired or not yet valid")
	case errors.As(err, &invalid):
		return e(ClassConfiguration, ReasonTLSError, "the server certificate is not acceptable")
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports an alert from the peer as a "remote error" OpError.
		return e(ClassConfiguration, ReasonTLSError, "the server refused the TLS handshake (check the client certificate and TLS settings)")
	case errors.As(err, &recordHeader),
		// net/http turns a RecordHeaderError that looks like HTTP into this plain error.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return e(ClassConfiguration, ReasonTLSError, "the endpoint does not speak TLS")
	case errors.As(err, &netErr) && netErr.Timeout():
		return e(ClassTransient, ReasonTimeout, "no answer within %s", timeout)
	case responseHeadersTooLarge(err):
		return e(ClassTransient, ReasonResponseTooLarge, "the answer's headers exceed %d bytes; a token response's are never that large", MaxResponseHeaderBytes)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return e(ClassTransient, ReasonEndpointUnreachable, "the connection was closed before an answer")
	}
	return e(ClassTransient, ReasonEndpointUnreachable, "cannot reach the endpoint")
}

// responseHeadersTooLarge: net/http and its HTTP/2 client report MaxResponseHeaderBytes
// exceeded with unexported errors, known only by their text.
func responseHeadersTooLarge(err error) bool {
	text := err.Error()
	return strings.Contains(text, "server response headers exceeded") ||
		strings.Contains(text, "response header list larger than advertised limit")
}
