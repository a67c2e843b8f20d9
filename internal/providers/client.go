package providers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// DefaultTimeout bounds a call when ClientOptions.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// MaxResponseBytes caps a token endpoint's answer; a token response is a few KiB.
const MaxResponseBytes = 1 << 20

// ClientOptions configure a Client. The zero value is usable.
type ClientOptions struct {
	// Timeout bounds each call, body included; default DefaultTimeout.
	Timeout time.Duration
	// Now is the clock IssuedAt and ExpiresAt are computed from; default time.Now.
	Now func() time.Time
	// NewMessageID makes RAKBANK partner's MsgId; default uuid.NewString.
	NewMessageID func() string
}

// Client makes token calls. It is safe for concurrent use and caches one *http.Transport
// per distinct TLSMaterial (keyed by a hash) so connections are reused across calls.
type Client struct {
	timeout      time.Duration
	now          func() time.Time
	newMessageID func() string
	transports   transportCache
}

// NewClient returns a Client with opts' defaults filled in.
func NewClient(opts ClientOptions) *Client {
	c := &Client{timeout: opts.Timeout, now: opts.Now, newMessageID: opts.NewMessageID}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.newMessageID == nil {
		c.newMessageID = uuid.NewString
	}
	return c
}

// CloseIdleConnections closes every cached transport's idle connections.
func (c *Client) CloseIdleConnections() { c.transports.closeIdle() }

// Fetch makes exactly one HTTP call: the primary grant, or the refresh_token grant when
// req.RefreshToken is set. Retrying is the caller's decision, made from the error's Class.
// A returned error is always an *Error.
func (c *Client) Fetch(ctx context.Context, req Request) (*Token, error) {
	tok, err := c.fetch(ctx, req)
	if err != nil {
		return nil, err
	}
	return tok, nil
}

func (c *Client) fetch(ctx context.Context, req Request) (*Token, *Error) {
	call, perr := plan(req)
	if perr != nil {
		return nil, perr
	}
	m := newMasker(req)
	ct, perr := c.transports.get(req.TLS)
	if perr != nil {
		return nil, perr
	}
	if !ct.clientCertNotAfter.IsZero() && c.now().After(ct.clientCertNotAfter) {
		return nil, configError(ReasonInvalidTLSConfig, "the client certificate expired at %s", ct.clientCertNotAfter.UTC().Format(time.RFC3339))
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	httpReq, perr := call.newHTTPRequest(ctx, c.newMessageID())
	if perr != nil {
		return nil, perr
	}
	httpClient := &http.Client{
		Transport: ct.transport,
		// A redirect would resend credentials to another URL; report it instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := httpClient.Do(httpReq)
	if err != nil {
		return nil, call.transportFailure(err, c.timeout, m)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, call.transportFailure(err, c.timeout, m)
	}
	if len(body) > MaxResponseBytes {
		return nil, newError(ClassTransient, ReasonResponseTooLarge, resp.StatusCode,
			"%s token endpoint %s answered %d with more than %d bytes; a token response is never that large",
			call.preset.Name, redactURL(call.endpoint), resp.StatusCode, MaxResponseBytes)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: body}
	now := c.now()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, call.failure(a, nil, m, now)
	}

	tok, tr, err := parseTokenResponse(body, tokenOptions{now: now, requestedScope: req.Scope, defaultLifetime: req.DefaultLifetime})
	switch {
	case errors.Is(err, errNotAToken):
		return nil, call.failure(a, tr, m, now)
	case err != nil:
		// Every parse error is our own words; only "not JSON" is told from the body's kind.
		what := err.Error()
		if errors.Is(err, errNotJSON) {
			what = describeBody(a)
		}
		return nil, newError(ClassTransient, ReasonInvalidResponse, resp.StatusCode,
			"%s token endpoint %s answered %d without a usable token: %s",
			call.preset.Name, redactURL(call.endpoint), resp.StatusCode, what)
	}
	return tok, nil
}
