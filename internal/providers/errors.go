package providers

import (
	"errors"
	"fmt"
	"time"
)

// Class tells the caller what to do with a failure.
type Class string

const (
	// ClassPermanent failures will not go away by retrying: bad credentials, an unsupported
	// grant, an invalid scope, a second factor demanded. Retry only after the spec or the
	// credentials change.
	ClassPermanent Class = "Permanent"
	// ClassTransient failures may pass: 5xx, timeouts, connection errors, malformed answers.
	ClassTransient Class = "Transient"
	// ClassRateLimited failures carry a RetryAfter to honour.
	ClassRateLimited Class = "RateLimited"
	// ClassConfiguration failures are ours to fix: a bad CA bundle or client certificate,
	// an insecure or malformed endpoint, a spec the provider cannot serve.
	ClassConfiguration Class = "Configuration"
	// ClassRefreshTokenRejected means the refresh token is dead (invalid_grant on a
	// refresh): forget it and fall back to the primary grant at once.
	ClassRefreshTokenRejected Class = "RefreshTokenRejected"
)

// Reasons are CamelCase, suitable for a condition's Reason.
const (
	ReasonInvalidCredentials     = "InvalidCredentials"
	ReasonInvalidScope           = "InvalidScope"
	ReasonUnsupportedGrantType   = "UnsupportedGrantType"
	ReasonUnauthorizedClient     = "UnauthorizedClient"
	ReasonSecondFactorRequired   = "SecondFactorRequired"
	ReasonInvalidRequest         = "InvalidRequest"
	ReasonAccessDenied           = "AccessDenied"
	ReasonRefreshTokenRejected   = "RefreshTokenRejected"
	ReasonRateLimited            = "RateLimited"
	ReasonServerError            = "ServerError"
	ReasonEndpointUnreachable    = "EndpointUnreachable"
	ReasonTimeout                = "Timeout"
	ReasonInvalidResponse        = "InvalidResponse"
	ReasonResponseTooLarge       = "ResponseTooLarge"
	ReasonTLSError               = "TLSError"
	ReasonInvalidTLSConfig       = "InvalidTLSConfiguration"
	ReasonInsecureEndpoint       = "InsecureEndpoint"
	ReasonInvalidEndpoint        = "InvalidEndpoint"
	ReasonInvalidProviderRequest = "InvalidProviderRequest"
	// ReasonInvalidClientAssertion: the PrivateKeyJWT key cannot sign, or the bank refused
	// the signed assertion (unknown key, audience, expiry, a replayed jti).
	ReasonInvalidClientAssertion = "InvalidClientAssertion"
	// ReasonClientCertificateRejected: the bank did not accept the client certificate as
	// the client's (TLSClientAuth, SelfSignedTLSClientAuth).
	ReasonClientCertificateRejected = "ClientCertificateRejected"
)

// Error is a classified failure. Its message never holds a secret, a token or a raw
// response body: only the endpoint (without query), the status, and the bank's error code
// and description after known secret values are masked.
type Error struct {
	Class  Class
	Reason string
	// StatusCode is the HTTP status, 0 when no response was received.
	StatusCode int
	// RetryAfter is the server's Retry-After, 0 when absent.
	RetryAfter time.Duration
	Message    string
	// NotSent says the request was never written in full: the call failed before or while
	// sending (refused before any I/O, DNS, connection refused, TLS handshake, a proxy's
	// refusal). The zero value, false, is the conservative one: it may have been sent.
	NotSent bool
}

func (e *Error) Error() string { return e.Message }

// MayHaveBeenProcessed reports whether the bank may have acted on the failed call, so that
// a refresh token sent in it must be treated as spent (a rotating bank may have issued its
// successor and revoked it). It is false only when the bank cannot have acted:
//   - the request was never written in full (NotSent), or
//   - the bank answered that it did not process it: rate limited (429, 503 with
//     Retry-After, slow_down), or a redirect, 404 or 405 (the URL is not a token endpoint).
//
// Everything else may have been processed: an answer that refused the call, and above all a
// call whose request went out and whose answer never came or could not be read (a timeout or
// a closed connection after the write, a cancellation after the write, a 200 cut off or
// unreadable).
func (e *Error) MayHaveBeenProcessed() bool {
	switch {
	case e.NotSent:
		return false
	case e.StatusCode == 0:
		return true
	case e.Class == ClassRateLimited:
		return false
	case e.Class == ClassConfiguration:
		// An answer classed as configuration names a URL that is not a token endpoint.
		return false
	}
	return true
}

// ClassOf returns the class of err, or ClassTransient for an unclassified error.
func ClassOf(err error) Class {
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Class
	}
	return ClassTransient
}

func newError(class Class, reason string, status int, format string, args ...any) *Error {
	return &Error{Class: class, Reason: reason, StatusCode: status, Message: fmt.Sprintf(format, args...)}
}
