package providers

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/net/http/httpproxy"
)

// DefaultTimeout bounds a call when ClientOptions.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// MaxResponseBytes caps a token endpoint's answer; a token response is a few KiB.
const MaxResponseBytes = 1 << 20

// MaxResponseHeaderBytes caps the headers of a token endpoint's answer.
const MaxResponseHeaderBytes = 64 << 10

// ClientOptions configure a Client. The zero value is usable.
type ClientOptions struct {
	// Timeout bounds each call, body included; default DefaultTimeout.
	Timeout time.Duration
	// Clock is what IssuedAt, ExpiresAt, Retry-After dates and the client certificate's
	// expiry are read against; default the system clock. Pass the reconciler's clock (a
	// k8s.io/utils/clock.PassiveClock satisfies Clock) so that one clock rules both.
	Clock Clock
	// NewMessageID makes RAKBANK partner's MsgId; default uuid.NewString.
	NewMessageID func() string
	// NewAssertionID makes a client assertion's jti, which must never repeat; default
	// uuid.NewString.
	NewAssertionID func() string
	// Guard decides which hosts and addresses calls may connect to; nil refuses what is
	// always refused and loopback (NewEndpointGuard with zero EndpointRules).
	Guard *EndpointGuard
	// Resolver resolves endpoint names; nil is net.DefaultResolver. Tests set one that
	// answers what they need.
	Resolver *net.Resolver
	// Proxy chooses the proxy for a call's URL (nil URL: none), as
	// httpproxy.Config.ProxyFunc does; nil reads HTTPS_PROXY, HTTP_PROXY and NO_PROXY from
	// the environment when the client is made. The target is checked before any proxy is used.
	Proxy func(*url.URL) (*url.URL, error)
}

// Clock tells the time. It is the Now of k8s.io/utils/clock.PassiveClock, so any
// clock.Clock or clock/testing.FakeClock can be passed without an adapter.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Client makes token calls. It is safe for concurrent use and caches one *http.Transport
// per distinct TLSMaterial (keyed by a hash) so connections are reused across calls.
type Client struct {
	timeout        time.Duration
	clock          Clock
	newMessageID   func() string
	newAssertionID func() string
	guard          *EndpointGuard
	transports     transportCache
}

// NewClient returns a Client with opts' defaults filled in.
func NewClient(opts ClientOptions) *Client {
	c := &Client{timeout: opts.Timeout, clock: opts.Clock, newMessageID: opts.NewMessageID, newAssertionID: opts.NewAssertionID}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.clock == nil {
		c.clock = systemClock{}
	}
	if c.newMessageID == nil {
		c.newMessageID = uuid.NewString
	}
	if c.newAssertionID == nil {
		c.newAssertionID = uuid.NewString
	}
	c.guard = opts.Guard
	if c.guard == nil {
		c.guard, _ = NewEndpointGuard(EndpointRules{}) // no host patterns to refuse
	}
	proxy := opts.Proxy
	if proxy == nil {
		proxy = httpproxy.FromEnvironment().ProxyFunc()
	}
	c.transports = transportCache{guard: c.guard, resolver: opts.Resolver, proxy: proxy}
	return c
}

// CloseIdleConnections closes every cached transport's idle connections.
func (c *Client) CloseIdleConnections() { c.transports.closeIdle() }

// Fetch makes exactly one HTTP call: the primary grant, or the refresh_token grant when
// req.RefreshToken is set. Retrying is the caller's decision, made from the error's Class;
// whether a refresh token sent in a failed call is spent, from MayHaveBeenProcessed.
// A returned error is always an *Error.
func (c *Client) Fetch(ctx context.Context, req Request) (*Token, error) {
	var written atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				written.Store(true)
			}
		},
	})
	tok, err := c.fetch(ctx, req)
	if err != nil {
		// Only a request written in full can have been processed: the bank cannot act on a
		// request whose body it never received.
		err.NotSent = !written.Load()
		return nil, err
	}
	return tok, nil
}

func (c *Client) fetch(ctx context.Context, req Request) (*Token, *Error) {
	call, perr := plan(req)
	if perr != nil {
		return nil, perr
	}
	a, m, perr := c.send(ctx, call, newMasker(req))
	if perr != nil {
		return nil, perr
	}
	return call.readAnswer(a, m, c.clock.Now())
}

// send makes the call's one HTTP request and reads the whole answer; m learns the client
// assertion, so that a bank echoing it cannot leak it.
func (c *Client) send(ctx context.Context, call *call, m masker) (answer, masker, *Error) {
	// The allowed-hosts rule is checked by name before any lookup; the dialer checks addresses.
	var refused *EndpointRefusedError
	if err := c.guard.CheckHost(call.endpoint.Hostname()); errors.As(err, &refused) {
		return answer{}, m, call.refused(refused)
	}
	if call.signer != nil {
		var perr *Error
		if call.assertion, perr = call.signer.sign(call.req.Credentials.ClientID, c.newAssertionID(), c.clock.Now()); perr != nil {
			return answer{}, m, perr
		}
		m.add(call.assertion.Reveal())
	}
	ct, perr := c.transports.get(call.req.TLS)
	if perr != nil {
		return answer{}, m, perr
	}
	if !ct.clientCertNotAfter.IsZero() && c.clock.Now().After(ct.clientCertNotAfter) {
		return answer{}, m, configError(ReasonInvalidTLSConfig, "the client certificate expired at %s", ct.clientCertNotAfter.UTC().Format(time.RFC3339))
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	httpReq, perr := call.newHTTPRequest(ctx, c.newMessageID())
	if perr != nil {
		return answer{}, m, perr
	}
	httpClient := &http.Client{
		Transport: ct.transport,
		// A redirect would resend credentials to another URL; report it instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := httpClient.Do(httpReq)
	if err != nil {
		return answer{}, m, call.transportFailure(err, c.timeout, m)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return answer{}, m, call.transportFailure(err, c.timeout, m)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: body}, m, nil
}

// readAnswer turns a complete answer into a token or a classified failure.
func (c *call) readAnswer(a answer, m masker, now time.Time) (*Token, *Error) {
	if len(a.body) > MaxResponseBytes {
		return nil, newError(ClassTransient, ReasonResponseTooLarge, a.status,
			"%s answered %d with more than %d bytes; a token response is never that large",
			c.where(), a.status, MaxResponseBytes)
	}
	if a.status < 200 || a.status > 299 {
		return nil, c.failure(a, nil, m, now)
	}
	tok, tr, err := parseTokenResponse(a.body, tokenOptions{now: now, requestedScope: c.req.Scope, defaultLifetime: c.req.DefaultLifetime})
	switch {
	case errors.Is(err, errNotAToken):
		return nil, c.failure(a, tr, m, now)
	case err != nil:
		// Every parse error is our own words; only "not JSON" is told from the body's kind.
		what := err.Error()
		if errors.Is(err, errNotJSON) {
			what = describeBody(a)
		}
		return nil, newError(ClassTransient, ReasonInvalidResponse, a.status,
			"%s answered %d without a usable token: %s",
			c.where(), a.status, what)
	}
	return tok, nil
}
