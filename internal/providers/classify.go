package providers

import (
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter bounds a server's Retry-After, so that a typo cannot park a token for weeks.
const maxRetryAfter = 24 * time.Hour

// answer is what came back over the wire, already size-checked.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// failure classifies a response that did not yield a token. Its message names the
// endpoint, the status and the bank's own error code and (cleaned) description, and
// nothing else from the body.
func (c *call) failure(a answer, tr *tokenResponse, m masker, now time.Time) *Error {
	if tr == nil {
		tr, _ = decodeTokenResponse(a.body)
	}
	return c.blameClientProof(c.classify(a, tr, m, now), a, tr)
}

// clientRefusals are the error codes with which a server refuses the client's proof of
// identity; jti_known is fosite's and Ory Hydra's answer to a replayed assertion.
var clientRefusals = []string{"invalid_client", "unauthorized_client", "unauthorized", "jti_known"}

// blameClientProof points a refused client at its key or certificate when one was its proof
// of identity (PrivateKeyJWT, TLSClientAuth, SelfSignedTLSClientAuth), not at a secret.
func (c *call) blameClientProof(err *Error, a answer, tr *tokenResponse) *Error {
	refused := a.status == http.StatusUnauthorized || (tr != nil && slices.Contains(clientRefusals, strings.ToLower(tr.Error)))
	if !refused || err.Class == ClassRateLimited || err.Class == ClassTransient {
		return err
	}
	switch {
	case c.clientAuth == ClientAuthPrivateKeyJWT:
		err.Class, err.Reason = ClassPermanent, ReasonInvalidClientAssertion
		err.Message += fmt.Sprintf(" (the bank refused the signed client assertion: check that it holds the public key%s, "+
			"that it accepts the audience %s, and the operator's clock)", keyIDNote(c.signer.keyID), stripQuery(c.signer.audience))
	case c.clientAuth.IsCertificateBased():
		err.Class, err.Reason = ClassPermanent, ReasonClientCertificateRejected
		err.Message += " (the bank did not accept the client certificate as this client's: check the certificate registered for the client id)"
	}
	return err
}

func keyIDNote(keyID string) string {
	if keyID == "" {
		return ""
	}
	return fmt.Sprintf(" of kid %q", keyID)
}

// classify maps a failed answer to a class and a reason.
func (c *call) classify(a answer, tr *tokenResponse, m masker, now time.Time) *Error {
	what := fmt.Sprintf("%s answered %d", c.where(), a.status)
	if detail := describe(tr, a, m); detail != "" {
		what += ": " + detail
	}
	e := func(class Class, reason string) *Error {
		return &Error{Class: class, Reason: reason, StatusCode: a.status, Message: what}
	}

	retryAfter := parseRetryAfter(a.header.Get("Retry-After"), now)
	switch {
	case a.status == http.StatusTooManyRequests,
		a.status == http.StatusServiceUnavailable && retryAfter > 0:
		err := e(ClassRateLimited, ReasonRateLimited)
		err.RetryAfter = retryAfter
		return err
	case tr != nil && (tr.secondFactor || slices.Contains(secondFactorErrors, strings.ToLower(tr.Error))):
		err := e(ClassPermanent, ReasonSecondFactorRequired)
		err.Message += " (the bank demands a second factor for this user, which an operator cannot answer)"
		return err
	}
	if tr != nil && tr.Error != "" {
		if class, reason, ok := c.classifyOAuthError(strings.ToLower(tr.Error)); ok {
			if reason == ReasonUnauthorizedClient && a.status == http.StatusUnauthorized {
				// Keycloak answers a wrong client secret with 401 unauthorized_client.
				reason = ReasonInvalidCredentials
			}
			err := e(class, reason)
			if class == ClassRateLimited {
				err.RetryAfter = retryAfter
			}
			return err
		}
	}

	return byStatus(a, m, e)
}

// byStatus classifies a failure the bank gave no known error code for, by its HTTP status.
func byStatus(a answer, m masker, e func(Class, string) *Error) *Error {
	switch s := a.status; {
	case s >= 500:
		return e(ClassTransient, ReasonServerError)
	case s == http.StatusRequestTimeout:
		return e(ClassTransient, ReasonTimeout)
	case s >= 300 && s < 400:
		err := e(ClassConfiguration, ReasonInvalidEndpoint)
		err.Message += "; redirects are not followed, set the final token URL"
		if loc := a.header.Get("Location"); loc != "" {
			err.Message += " (Location: " + m.cleanDescription(stripQuery(loc)) + ")"
		}
		return err
	case s == http.StatusUnauthorized:
		return e(ClassPermanent, ReasonInvalidCredentials)
	case s == http.StatusForbidden:
		return e(ClassPermanent, ReasonAccessDenied)
	case s == http.StatusNotFound, s == http.StatusMethodNotAllowed:
		err := e(ClassConfiguration, ReasonInvalidEndpoint)
		err.Message += "; is this the token URL?"
		return err
	case s >= 400:
		return e(ClassPermanent, ReasonInvalidRequest)
	}
	return e(ClassTransient, ReasonInvalidResponse)
}

// oauthErrors maps RFC 6749 §5.2 error codes (and the common non-standard ones) that mean
// the same on any grant.
var oauthErrors = map[string]struct {
	class  Class
	reason string
}{
	"invalid_client":          {ClassPermanent, ReasonInvalidCredentials},
	"unauthorized":            {ClassPermanent, ReasonInvalidCredentials},
	"unauthorized_client":     {ClassPermanent, ReasonUnauthorizedClient},
	"unsupported_grant_type":  {ClassPermanent, ReasonUnsupportedGrantType},
	"invalid_scope":           {ClassPermanent, ReasonInvalidScope},
	"invalid_request":         {ClassPermanent, ReasonInvalidRequest},
	"access_denied":           {ClassPermanent, ReasonAccessDenied},
	"server_error":            {ClassTransient, ReasonServerError},
	"temporarily_unavailable": {ClassTransient, ReasonServerError},
	"slow_down":               {ClassRateLimited, ReasonRateLimited},
}

// deadTokenErrors say the token presented as the grant is no good.
var deadTokenErrors = []string{"invalid_grant", "invalid_token", "token_inactive", "expired_token"}

// classifyOAuthError maps an error code; what a dead-token code means depends on the grant.
func (c *call) classifyOAuthError(code string) (Class, string, bool) {
	switch {
	case slices.Contains(deadTokenErrors, code) && c.isRefresh():
		return ClassRefreshTokenRejected, ReasonRefreshTokenRejected, true
	case code == "invalid_grant":
		return ClassPermanent, ReasonInvalidCredentials, true
	}
	known, ok := oauthErrors[code]
	return known.class, known.reason, ok
}

// describe renders the bank's own words about the failure, cleaned; or, when the body
// is not a JSON document, what kind of body it was.
func describe(tr *tokenResponse, a answer, m masker) string {
	if tr == nil {
		return m.cleanDescription(describeBody(a))
	}
	var parts []string
	if tr.Error != "" {
		parts = append(parts, m.cleanDescription(tr.Error))
		if tr.ErrorDescription != "" {
			parts = append(parts, m.cleanDescription(tr.ErrorDescription))
		}
	}
	if tr.ResponseCode != "" {
		parts = append(parts, "response_code "+m.cleanDescription(string(tr.ResponseCode)))
		for _, s := range []string{tr.ResponseMessage, tr.Description} {
			if s != "" {
				parts = append(parts, m.cleanDescription(s))
			}
		}
	}
	if tr.GatewayMessage != "" || tr.GatewayInformation != "" {
		parts = append(parts, "gateway "+m.cleanDescription(strings.TrimSpace(string(tr.GatewayCode)+" "+tr.GatewayMessage)))
		if tr.GatewayInformation != "" {
			parts = append(parts, m.cleanDescription(tr.GatewayInformation))
		}
	}
	if len(parts) == 0 && tr.secondFactor {
		parts = append(parts, "a second-factor challenge instead of a token")
	}
	return strings.Join(parts, ": ")
}

func describeBody(a answer) string {
	if len(strings.TrimSpace(string(a.body))) == 0 {
		return "an empty body"
	}
	mediaType, _, _ := mime.ParseMediaType(a.header.Get("Content-Type"))
	trimmed := strings.ToLower(strings.TrimSpace(string(a.body[:min(len(a.body), 512)])))
	switch {
	case mediaType == "text/html", strings.HasPrefix(trimmed, "<!doctype html"), strings.HasPrefix(trimmed, "<html"):
		return "an HTML page, not JSON"
	case mediaType == "application/json" || strings.HasPrefix(trimmed, "{"):
		return "malformed JSON"
	case mediaType != "":
		return "a " + mediaType + " body, not JSON"
	}
	return "a body that is not JSON"
}

// parseRetryAfter reads RFC 9110 Retry-After: delay-seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, maxRetryAfter))
}
