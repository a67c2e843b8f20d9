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
}

func (e *Error) Error() string { return e.Message }

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
