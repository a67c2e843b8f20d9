package providers

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
)

// Document is a document a bank's server publishes (its authorization server metadata),
// read whole or refused.
type Document struct {
	StatusCode int
	Body       []byte
}

// FetchDocument GETs rawURL over the TLS material and the endpoint guard of the token
// calls, with their timeout: a metadata document names the endpoints credentials are sent
// to, so it gets the same protections. An answer longer than maxBytes is refused, redirects
// are not followed, and http is refused unless allowInsecureHTTP. A returned error is an
// *Error; an answer of any status is a Document.
func (c *Client) FetchDocument(ctx context.Context, rawURL string, m TLSMaterial, allowInsecureHTTP bool, maxBytes int64) (*Document, error) {
	u, err := url.Parse(rawURL)
	if err != nil || !u.IsAbs() || u.Hostname() == "" {
		return nil, configError(ReasonInvalidEndpoint, "the metadata URL is not an absolute URL")
	}
	where := "metadata document " + redactURL(u)
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !allowInsecureHTTP {
			return nil, configError(ReasonInsecureEndpoint, "%s is not https", where)
		}
	default:
		return nil, configError(ReasonInvalidEndpoint, "%s is not https", where)
	}
	var refused *EndpointRefusedError
	if err := c.guard.CheckHost(u.Hostname()); errors.As(err, &refused) {
		return nil, documentRefused(where, refused)
	}
	ct, perr := c.transports.get(m)
	if perr != nil {
		return nil, perr
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, configError(ReasonInvalidEndpoint, "%s: cannot build request", where)
	}
	req.Header.Set("Accept", "application/json")
	httpClient := &http.Client{
		Transport:     ct.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, documentTransportFailure(where, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, documentTransportFailure(where, err)
	}
	if int64(len(body)) > maxBytes {
		return nil, newError(ClassTransient, ReasonResponseTooLarge, resp.StatusCode,
			"%s answered with more than %d bytes; a metadata document is never that large", where, maxBytes)
	}
	return &Document{StatusCode: resp.StatusCode, Body: body}, nil
}

func documentRefused(where string, err *EndpointRefusedError) *Error {
	e := configError(ReasonEndpointRefused, "%s is refused: %s", where, err.Rule)
	e.NotSent = true
	return e
}

// documentTransportFailure classifies a failed GET coarsely: what the caller needs is
// whether it was refused by the guard, a TLS name mismatch, or the server out of reach.
func documentTransportFailure(where string, err error) *Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var refused *EndpointRefusedError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &refused):
		return documentRefused(where, refused)
	case errors.Is(err, context.DeadlineExceeded):
		return newError(ClassTransient, ReasonTimeout, 0, "%s: no answer in time", where)
	case errors.As(err, &hostname):
		return newError(ClassTransient, ReasonTLSError, 0, "%s: the server certificate is not valid for this host", where)
	case errors.Is(err, syscall.ECONNREFUSED):
		return newError(ClassTransient, ReasonEndpointUnreachable, 0, "%s: connection refused", where)
	}
	return newError(ClassTransient, ReasonEndpointUnreachable, 0, "%s: cannot reach the server (%v)", where, err)
}

// CheckHost applies the endpoint guard's host rules to a host a call may go to, before any
// lookup; the addresses are checked when a call dials.
func (c *Client) CheckHost(host string) error { return c.guard.CheckHost(host) }
