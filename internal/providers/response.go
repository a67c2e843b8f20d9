package providers

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/net/http/httpguts"
)

// FallbackLifetime is assumed when the response gives neither expires_in nor a JWT exp
// claim and the request set no DefaultLifetime.
const FallbackLifetime = time.Hour

// maxLifetime keeps absurd expires_in values (RAKBANK's example is over three years)
// from overflowing time.Duration.
const maxLifetime = 100 * 365 * 24 * time.Hour

// tokenResponse is the union of every bank's answer: RFC 6749 §5.1 success, §5.2 error,
// RAKBANK's IBM-style error, IBM API Connect's gateway error, and the second-factor
// markers we recognise.
type tokenResponse struct {
	AccessToken      string  `json:"access_token"`
	TokenType        string  `json:"token_type"`
	ExpiresIn        seconds `json:"expires_in"`
	RefreshToken     string  `json:"refresh_token"`
	RefreshExpiresIn seconds `json:"refresh_expires_in"`
	Scope            scope   `json:"scope"`

	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`

	Status          flexString `json:"status"`
	ResponseCode    flexString `json:"response_code"`
	ResponseMessage string     `json:"response_message"`
	Description     string     `json:"description"`

	// IBM API Connect's gateway answers its own refusals (RAKBANK's gateway) this way:
	// {"httpCode":"401","httpMessage":"Unauthorized","moreInformation":"..."}.
	GatewayCode        flexString `json:"httpCode"`
	GatewayMessage     string     `json:"httpMessage"`
	GatewayInformation string     `json:"moreInformation"`

	secondFactor bool
}

// secondFactorFields are keys a login answer carries when it stops at an OTP/2FA challenge.
var secondFactorFields = []string{
	"mfa_token", "mfa_required", "otp_required", "twoFactor", "two_factor", "twoFactorRequired",
	"two_factor_required", "isTwoFactorAuthenticationRequired", "requires2FA", "otpRequired",
}

// secondFactorErrors are error codes meaning a person must answer a challenge.
var secondFactorErrors = []string{
	"mfa_required", "otp_required", "two_factor_required", "2fa_required", "second_factor_required",
	"interaction_required",
}

// seconds is expires_in: a JSON integer, a float, or a numeric string; null is absent.
type seconds struct {
	value time.Duration
	set   bool
}

func (s *seconds) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(str))
		if len(b) == 0 {
			return nil
		}
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fieldError("expires_in is not a number")
	}
	if f < 0 {
		return fieldError("expires_in is negative")
	}
	d := time.Duration(math.Min(f, maxLifetime.Seconds())) * time.Second
	*s = seconds{value: d, set: true}
	return nil
}

// scope accepts the RFC's space-separated string and the array some servers send.
type scope string

func (s *scope) UnmarshalJSON(b []byte) error {
	str, err := stringOr(b, func() (string, error) {
		var list []string
		err := json.Unmarshal(b, &list)
		return strings.Join(list, " "), err
	}, "scope is neither a string nor a list of strings")
	*s = scope(str)
	return err
}

// flexString accepts a string or a number: IBM gateways are not consistent about status.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	str, err := stringOr(b, func() (string, error) {
		var n json.Number
		err := json.Unmarshal(b, &n)
		return n.String(), err
	}, "status or response_code is neither a string nor a number")
	*s = flexString(str)
	return err
}

// stringOr decodes a JSON string, or else the other form a bank may send in its place; when
// neither fits, the error says which field was malformed and nothing of what it held.
func stringOr(b []byte, other func() (string, error), malformed string) (string, error) {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		return str, nil
	}
	str, err := other()
	if err != nil {
		return "", fieldError(malformed)
	}
	return str, nil
}

// fieldError says which field was malformed, never what it held.
type fieldError string

func (e fieldError) Error() string { return string(e) }

// decodeTokenResponse decodes a JSON object body. It fails on anything that is not a JSON
// object: HTML, text, arrays, truncated documents.
func decodeTokenResponse(body []byte) (*tokenResponse, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, errNotJSON
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, errors.New("field " + te.Field + " has the wrong type")
		}
		var fe fieldError
		if errors.As(err, &fe) {
			return nil, fe
		}
		return nil, errors.New("a field has the wrong type")
	}
	for _, k := range secondFactorFields {
		if v, ok := raw[k]; ok && !isFalsy(v) {
			tr.secondFactor = true
		}
	}
	return &tr, nil
}

func isFalsy(v json.RawMessage) bool {
	switch strings.TrimSpace(string(v)) {
	case "false", "null", `""`, "0":
		return true
	}
	return false
}

// tokenOptions are the parts of the request and the clock that shape a Token.
type tokenOptions struct {
	now             time.Time
	requestedScope  string
	defaultLifetime time.Duration
}

// parseTokenResponse turns a 2xx body into a Token. The error, if any, says what was
// wrong with the document without quoting it.
func parseTokenResponse(body []byte, opts tokenOptions) (*Token, *tokenResponse, error) {
	tr, err := decodeTokenResponse(body)
	if err != nil {
		return nil, nil, err
	}
	if tr.Error != "" || tr.ResponseCode != "" || tr.secondFactor {
		return nil, tr, errNotAToken
	}
	if tr.AccessToken == "" {
		return nil, tr, errors.New("no access_token in the response")
	}
	if !httpguts.ValidHeaderFieldValue(tr.AccessToken) || strings.ContainsAny(tr.AccessToken, " \t") {
		return nil, tr, errors.New("access_token holds characters that cannot travel in a header")
	}
	if tr.RefreshToken != "" && !httpguts.ValidHeaderFieldValue(tr.RefreshToken) {
		return nil, tr, errors.New("refresh_token holds control characters")
	}
	tokenType, err := normaliseTokenType(tr.TokenType)
	if err != nil {
		return nil, tr, err
	}

	t := &Token{
		AccessToken:           Secret(tr.AccessToken),
		TokenType:             tokenType,
		RefreshToken:          Secret(tr.RefreshToken),
		Scope:                 strings.TrimSpace(string(tr.Scope)),
		IssuedAt:              opts.now,
		CertificateThumbprint: jwtCertificateThumbprint(tr.AccessToken),
	}
	if t.Scope == "" {
		t.Scope = opts.requestedScope
	}
	switch {
	case tr.ExpiresIn.set && tr.ExpiresIn.value > 0:
		t.ExpiresAt = opts.now.Add(tr.ExpiresIn.value)
	default:
		// expires_in absent or 0: the JWT's own exp is the next best witness.
		if exp, ok := jwtExpiry(tr.AccessToken); ok {
			if !exp.After(opts.now) {
				return nil, tr, errors.New("the access token's exp claim is already past")
			}
			t.ExpiresAt = exp
		} else {
			lifetime := opts.defaultLifetime
			if lifetime <= 0 {
				lifetime = FallbackLifetime
			}
			t.ExpiresAt = opts.now.Add(lifetime)
		}
	}
	// refresh_expires_in 0 is Keycloak's "offline token": no expiry by time.
	if tr.RefreshToken != "" && tr.RefreshExpiresIn.set && tr.RefreshExpiresIn.value > 0 {
		t.RefreshExpiresAt = opts.now.Add(tr.RefreshExpiresIn.value)
	}
	return t, tr, nil
}

// errNotJSON marks a body that is not a JSON object at all.
var errNotJSON = errors.New("not a JSON object")

// errNotAToken marks a 2xx body that is really an error or a challenge.
var errNotAToken = errors.New("the response is an error, not a token")

func normaliseTokenType(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	switch {
	case raw == "":
		// RFC 6749 requires token_type, but every bank here issues bearer tokens.
		return "Bearer", nil
	case strings.EqualFold(raw, "bearer"):
		return "Bearer", nil
	case len(raw) > 64 || !isToken68(raw):
		return "", errors.New("token_type is not a valid authentication scheme")
	}
	return raw, nil
}

func isToken68(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~+/", r)) {
			return false
		}
	}
	return true
}

// jwtClaims reads the claims of an unverified JWT: we only need to know what the bank says
// of its token (when it expires, what it is bound to), not whether to trust it.
func jwtClaims(accessToken string) (jwt.MapClaims, bool) {
	if strings.Count(accessToken, ".") != 2 {
		return nil, false
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(accessToken, claims); err != nil {
		return nil, false
	}
	return claims, true
}

// jwtCertificateThumbprint reads cnf.x5t#S256 (RFC 8705 §3.1): the token is bound to the
// client certificate of that SHA-256 thumbprint.
func jwtCertificateThumbprint(accessToken string) string {
	claims, ok := jwtClaims(accessToken)
	if !ok {
		return ""
	}
	cnf, _ := claims["cnf"].(map[string]any)
	thumbprint, _ := cnf["x5t#S256"].(string)
	// Only a well-formed SHA-256 thumbprint is passed on: it is written where workloads read it.
	if digest, err := base64.RawURLEncoding.DecodeString(thumbprint); err != nil || len(digest) != sha256.Size {
		return ""
	}
	return thumbprint
}

// jwtExpiry reads exp from an unverified JWT.
func jwtExpiry(accessToken string) (time.Time, bool) {
	claims, ok := jwtClaims(accessToken)
	if !ok {
		return time.Time{}, false
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return time.Time{}, false
	}
	return exp.Time, true
}
