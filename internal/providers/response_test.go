package providers

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testJWT is an unsigned-looking HS256 JWT with the given exp; the parser never verifies.
func testJWT(exp time.Time) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": exp.Unix(), "sub": "svc"}).SignedString([]byte("test-signing-key"))
	if err != nil {
		panic(err)
	}
	return s
}

type tokenResponseCase struct {
	name          string
	body          string
	wantType      string
	wantExpiresIn time.Duration
	wantScope     string
	wantRefresh   string
	wantRefreshIn time.Duration
	wantErr       string
}

func tokenResponseCases() []tokenResponseCase {
	return []tokenResponseCase{
		{name: "RAKBank example, lowercase bearer and a three-year integer", body: `{"token_type":"bearer","access_token":"6304235636977193","expires_in":99992564,"scope":"hedodosjotgeze","refresh_token":"830c"}`,
			wantType: "Bearer", wantExpiresIn: 99992564 * time.Second, wantScope: "hedodosjotgeze", wantRefresh: "830c"},
		{name: "Paymob expires_in as a string", body: `{"access_token":"Df0Z","expires_in":"3600","refresh_token":"Y23r","scope":"read write","token_type":"Bearer"}`,
			wantType: "Bearer", wantExpiresIn: time.Hour, wantScope: "read write", wantRefresh: "Y23r"},
		{name: "expires_in as a float is truncated to seconds", body: `{"access_token":"a","token_type":"BEARER","expires_in":299.9}`,
			wantType: "Bearer", wantExpiresIn: 299 * time.Second, wantScope: "requested"},
		{name: "Keycloak offline token has no refresh expiry", body: `{"access_token":"a","token_type":"Bearer","expires_in":300,"refresh_expires_in":0,"refresh_token":"r"}`,
			wantType: "Bearer", wantExpiresIn: 5 * time.Minute, wantScope: "requested", wantRefresh: "r"},
		{name: "refresh_expires_in sets the refresh expiry", body: `{"access_token":"a","expires_in":300,"refresh_expires_in":1800,"refresh_token":"r"}`,
			wantType: "Bearer", wantExpiresIn: 5 * time.Minute, wantScope: "requested", wantRefresh: "r", wantRefreshIn: 30 * time.Minute},
		{name: "missing expires_in falls back to the JWT exp", body: `{"access_token":"` + testJWT(testNow.Add(42*time.Minute)) + `","token_type":"Bearer"}`,
			wantType: "Bearer", wantExpiresIn: 42 * time.Minute, wantScope: "requested"},
		{name: "expires_in 0 falls back to the JWT exp", body: `{"access_token":"` + testJWT(testNow.Add(9*time.Minute)) + `","expires_in":0}`,
			wantType: "Bearer", wantExpiresIn: 9 * time.Minute, wantScope: "requested"},
		{name: "null expires_in and an opaque token fall back to the caller's default", body: `{"access_token":"opaque","token_type":"Bearer","expires_in":null}`,
			wantType: "Bearer", wantExpiresIn: 7 * time.Minute, wantScope: "requested"},
		{name: "missing token_type is taken as Bearer", body: `{"access_token":"a","expires_in":60}`,
			wantType: "Bearer", wantExpiresIn: time.Minute, wantScope: "requested"},
		{name: "another token type is kept as sent", body: `{"access_token":"a","token_type":"DPoP","expires_in":60}`,
			wantType: "DPoP", wantExpiresIn: time.Minute, wantScope: "requested"},
		{name: "scope as a list", body: `{"access_token":"a","expires_in":60,"scope":["read","write"]}`,
			wantType: "Bearer", wantExpiresIn: time.Minute, wantScope: "read write"},
		{name: "absurd expires_in is capped, not overflowed", body: `{"access_token":"a","expires_in":1e300}`,
			wantType: "Bearer", wantExpiresIn: maxLifetime, wantScope: "requested"},

		{name: "no access_token", body: `{"token_type":"bearer","expires_in":60}`, wantErr: "no access_token"},
		{name: "empty access_token", body: `{"access_token":"","expires_in":60}`, wantErr: "no access_token"},
		{name: "access_token with a space cannot go in a header", body: `{"access_token":"a b","expires_in":60}`, wantErr: "cannot travel in a header"},
		{name: "token_type with a space", body: `{"access_token":"a","token_type":"Bearer x"}`, wantErr: "token_type"},
		{name: "negative expires_in", body: `{"access_token":"a","expires_in":-5}`, wantErr: "expires_in is negative"},
		{name: "non-numeric expires_in string", body: `{"access_token":"a","expires_in":"soon"}`, wantErr: "expires_in is not a number"},
		{name: "boolean expires_in", body: `{"access_token":"a","expires_in":true}`, wantErr: "expires_in is not a number"},
		{name: "access_token of the wrong type", body: `{"access_token":12345}`, wantErr: "access_token has the wrong type"},
		{name: "JWT already expired", body: `{"access_token":"` + testJWT(testNow.Add(-time.Minute)) + `"}`, wantErr: "already past"},
		{name: "HTML", body: `<html><body>Bad gateway</body></html>`, wantErr: "not a JSON object"},
		{name: "truncated JSON", body: `{"access_token":"abc","expi`, wantErr: "not a JSON object"},
		{name: "a JSON array", body: `[{"access_token":"a"}]`, wantErr: "not a JSON object"},
		{name: "JSON null", body: `null`, wantErr: "not a JSON object"},
		{name: "empty body", body: ``, wantErr: "not a JSON object"},
		{name: "an error document on a 200", body: `{"error":"invalid_grant"}`, wantErr: errNotAToken.Error()},
		{name: "an IBM error document on a 200", body: `{"status":"400","response_code":"X","response_message":"m"}`, wantErr: errNotAToken.Error()},
		{name: "a second-factor challenge on a 200", body: `{"twoFactor":true,"token_type":"bearer"}`, wantErr: errNotAToken.Error()},
	}
}

func TestParseTokenResponse(t *testing.T) {
	opts := tokenOptions{now: testNow, requestedScope: "requested", defaultLifetime: 7 * time.Minute}
	cases := tokenResponseCases()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, _, err := parseTokenResponse([]byte(tc.body), opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tok.TokenType != tc.wantType {
				t.Errorf("TokenType = %q, want %q", tok.TokenType, tc.wantType)
			}
			if got := tok.ExpiresAt.Sub(tok.IssuedAt); got != tc.wantExpiresIn {
				t.Errorf("lifetime = %v, want %v", got, tc.wantExpiresIn)
			}
			if !tok.IssuedAt.Equal(testNow) {
				t.Errorf("IssuedAt = %v, want the clock's %v", tok.IssuedAt, testNow)
			}
			if tok.Scope != tc.wantScope {
				t.Errorf("Scope = %q, want %q", tok.Scope, tc.wantScope)
			}
			if tok.RefreshToken.Reveal() != tc.wantRefresh {
				t.Errorf("RefreshToken = %q, want %q", tok.RefreshToken.Reveal(), tc.wantRefresh)
			}
			var gotRefreshIn time.Duration
			if !tok.RefreshExpiresAt.IsZero() {
				gotRefreshIn = tok.RefreshExpiresAt.Sub(testNow)
			}
			if gotRefreshIn != tc.wantRefreshIn {
				t.Errorf("refresh lifetime = %v, want %v", gotRefreshIn, tc.wantRefreshIn)
			}
		})
	}
}

func TestParseTokenResponseFallsBackToOneHourWithoutADefault(t *testing.T) {
	tok, _, err := parseTokenResponse([]byte(`{"access_token":"opaque"}`), tokenOptions{now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.ExpiresAt.Sub(testNow); got != FallbackLifetime {
		t.Errorf("lifetime = %v, want %v", got, FallbackLifetime)
	}
}

// Secrets of the classification requests: no message may contain them.
const (
	classifySecret   = "classify-client-secret"
	classifyPassword = "classify-password"
	classifyRefresh  = "classify-refresh-token"
)

type failureCase struct {
	name           string
	req            Request
	status         int
	header         http.Header
	body           string
	wantClass      Class
	wantReason     string
	wantRetryAfter time.Duration
	wantInMessage  []string
}

// classifyRequests are a password login and a refresh whose secrets must never reach a message.
func classifyRequests() (primary, refreshing Request) {
	primary = Request{
		Provider: Paymob, TokenEndpoint: "https://bank.example/o/token/?api_key=leak",
		Credentials: Credentials{ClientID: "client", ClientSecret: classifySecret, Username: "user", Password: classifyPassword},
	}
	refreshing = primary
	refreshing.RefreshToken = classifyRefresh
	return primary, refreshing
}

func failureCases() []failureCase {
	primary, refreshing := classifyRequests()
	retryDate := testNow.Add(90 * time.Second).Format(http.TimeFormat)

	return []failureCase{
		{name: "invalid_grant on a password login is bad credentials", req: primary, status: 400,
			body:      `{"error":"invalid_grant","error_description":"Invalid credentials given."}`,
			wantClass: ClassPermanent, wantReason: ReasonInvalidCredentials, wantInMessage: []string{"400", "invalid_grant", "Invalid credentials given."}},
		{name: "invalid_grant on a refresh kills the refresh token", req: refreshing, status: 400, body: `{"error":"invalid_grant"}`,
			wantClass: ClassRefreshTokenRejected, wantReason: ReasonRefreshTokenRejected},
		{name: "invalid_grant with 401 on a refresh kills the refresh token", req: refreshing, status: 401, body: `{"error":"invalid_grant"}`,
			wantClass: ClassRefreshTokenRejected, wantReason: ReasonRefreshTokenRejected},
		{name: "invalid_client on a refresh is bad client credentials, not a dead refresh token", req: refreshing, status: 401, body: `{"error":"invalid_client"}`,
			wantClass: ClassPermanent, wantReason: ReasonInvalidCredentials},
		{name: "IBM API Connect's gateway refusal of a refresh", req: refreshing, status: 401,
			body:      `{"httpCode":"401","httpMessage":"Unauthorized","moreInformation":"Invalid client id or secret."}`,
			wantClass: ClassPermanent, wantReason: ReasonInvalidCredentials, wantInMessage: []string{"gateway 401 Unauthorized", "Invalid client id or secret."}},
		{name: "401 with no body", req: primary, status: 401, wantClass: ClassPermanent, wantReason: ReasonInvalidCredentials, wantInMessage: []string{"an empty body"}},
		{name: "Keycloak's 401 unauthorized_client is bad credentials", req: primary, status: 401, body: `{"error":"unauthorized_client","error_description":"Invalid client or Invalid client credentials"}`,
			wantClass: ClassPermanent, wantReason: ReasonInvalidCredentials},
		{name: "400 unauthorized_client is a grant the client may not use", req: primary, status: 400, body: `{"error":"unauthorized_client"}`,
			wantClass: ClassPermanent, wantReason: ReasonUnauthorizedClient},
		{name: "403 access denied", req: primary, status: 403, body: `{}`, wantClass: ClassPermanent, wantReason: ReasonAccessDenied},
		{name: "unsupported grant", req: primary, status: 400, body: `{"error":"unsupported_grant_type"}`, wantClass: ClassPermanent, wantReason: ReasonUnsupportedGrantType},
		{name: "invalid scope", req: primary, status: 400, body: `{"error":"invalid_scope"}`, wantClass: ClassPermanent, wantReason: ReasonInvalidScope},
		{name: "MBANQ second factor", req: primary, status: 403, body: `{"error":"mfa_required","error_description":"OTP sent","mfa_token":"t"}`,
			wantClass: ClassPermanent, wantReason: ReasonSecondFactorRequired, wantInMessage: []string{"second factor"}},
		{name: "second factor marker on a 200", req: primary, status: 200, body: `{"twoFactorRequired":true}`,
			wantClass: ClassPermanent, wantReason: ReasonSecondFactorRequired},
		{name: "RAKBANK partner IBM error", req: primary, status: 401, body: `{"status":"401","response_code":"AUTH-003","response_message":"Unauthorized","description":"invalid client id or secret"}`,
			wantClass: ClassPermanent, wantReason: ReasonInvalidCredentials, wantInMessage: []string{"response_code AUTH-003", "Unauthorized", "invalid client id or secret"}},
		{name: "IBM error with a numeric status", req: primary, status: 400, body: `{"status":400,"response_code":"REQ-002","response_message":"Bad Request"}`,
			wantClass: ClassPermanent, wantReason: ReasonInvalidRequest, wantInMessage: []string{"REQ-002"}},
		{name: "429 with Retry-After seconds", req: primary, status: 429, header: http.Header{"Retry-After": {"120"}},
			wantClass: ClassRateLimited, wantReason: ReasonRateLimited, wantRetryAfter: 2 * time.Minute},
		{name: "429 with Retry-After as an HTTP date", req: primary, status: 429, header: http.Header{"Retry-After": {retryDate}},
			wantClass: ClassRateLimited, wantReason: ReasonRateLimited, wantRetryAfter: 90 * time.Second},
		{name: "429 without Retry-After", req: primary, status: 429, wantClass: ClassRateLimited, wantReason: ReasonRateLimited},
		{name: "503 with Retry-After is rate limiting", req: primary, status: 503, header: http.Header{"Retry-After": {"7"}},
			wantClass: ClassRateLimited, wantReason: ReasonRateLimited, wantRetryAfter: 7 * time.Second},
		{name: "Retry-After beyond a day is capped", req: primary, status: 429, header: http.Header{"Retry-After": {"99999999"}},
			wantClass: ClassRateLimited, wantReason: ReasonRateLimited, wantRetryAfter: maxRetryAfter},
		{name: "503 HTML page without Retry-After is transient", req: primary, status: 503, header: http.Header{"Content-Type": {"text/html"}},
			body: "<html><body>down</body></html>", wantClass: ClassTransient, wantReason: ReasonServerError, wantInMessage: []string{"an HTML page"}},
		{name: "500", req: primary, status: 500, body: `{"error":"server_error"}`, wantClass: ClassTransient, wantReason: ReasonServerError},
		{name: "redirect is a configuration error", req: primary, status: 302, header: http.Header{"Location": {"https://elsewhere.example/token?code=abc"}},
			wantClass: ClassConfiguration, wantReason: ReasonInvalidEndpoint, wantInMessage: []string{"https://elsewhere.example/token", "redirects are not followed"}},
		{name: "404 is a wrong URL", req: primary, status: 404, body: `not found`, wantClass: ClassConfiguration, wantReason: ReasonInvalidEndpoint},
		{name: "description echoing secrets is masked", req: refreshing, status: 400,
			body:      `{"error":"invalid_request","error_description":"bad secret ` + classifySecret + ` for password ` + classifyPassword + ` and token ` + classifyRefresh + ` at https://x.example/cb?token=abc"}`,
			wantClass: ClassPermanent, wantReason: ReasonInvalidRequest, wantInMessage: []string{"[masked]", "https://x.example/cb"}},
		{name: "description echoing a form-encoded password is masked", req: primary, status: 400,
			body:      `{"error":"invalid_request","error_description":"body was password=classify-password&x=1 grant"}`,
			wantClass: ClassPermanent, wantReason: ReasonInvalidRequest},
		{name: "a huge description is cut", req: primary, status: 400, body: `{"error":"invalid_request","error_description":"` + strings.Repeat("x", 5000) + `"}`,
			wantClass: ClassPermanent, wantReason: ReasonInvalidRequest, wantInMessage: []string{"…"}},
	}
}

func TestFailureClassification(t *testing.T) {
	cases := failureCases()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, perr := plan(tc.req)
			if perr != nil {
				t.Fatal(perr)
			}
			header := tc.header
			if header == nil {
				header = http.Header{}
			}
			e := c.failure(answer{status: tc.status, header: header, body: []byte(tc.body)}, nil, newMasker(tc.req), testNow)
			if e.Class != tc.wantClass || e.Reason != tc.wantReason {
				t.Errorf("got %s/%s, want %s/%s (%s)", e.Class, e.Reason, tc.wantClass, tc.wantReason, e.Message)
			}
			if e.StatusCode != tc.status {
				t.Errorf("StatusCode = %d, want %d", e.StatusCode, tc.status)
			}
			if e.RetryAfter != tc.wantRetryAfter {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tc.wantRetryAfter)
			}
			for _, want := range append(tc.wantInMessage, "Paymob token endpoint https://bank.example/o/token/ answered") {
				if !strings.Contains(e.Message, want) {
					t.Errorf("message %q does not contain %q", e.Message, want)
				}
			}
			for _, leak := range []string{classifySecret, classifyPassword, classifyRefresh, "api_key=leak", "token=abc", "code=abc", strings.Repeat("x", maxDescriptionLength+1)} {
				if strings.Contains(e.Message, leak) {
					t.Errorf("message %q leaks %q", e.Message, leak)
				}
			}
		})
	}
}
