package providers

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParseTokenResponse feeds arbitrary bodies to the parser and the failure classifier:
// neither may panic, a token must be usable, and no message may quote the body's secrets.
func FuzzParseTokenResponse(f *testing.F) {
	for _, seed := range []string{
		`{"token_type":"bearer","access_token":"6304235636977193","expires_in":99992564,"scope":"hedodosjotgeze","refresh_token":"830c08bc"}`,
		`{"access_token":"Df0Z0r74hxZmO47mo9QnRrncVJIGU6","expires_in":"3600","refresh_token":"Y23rwVNSRtLjhy2nIwslJdo3FbAS6d","scope":"read write","token_type":"Bearer"}`,
		`{"access_token":"` + testJWT(time.Unix(1_700_000_600, 0)) + `","token_type":"Bearer"}`,
		`{"access_token":"x","expires_in":300,"refresh_expires_in":0,"refresh_token":"y","token_type":"Bearer","not-before-policy":0}`,
		`{"error":"invalid_grant","error_description":"Invalid credentials given."}`,
		`{"status":"401","response_code":"AUTH-003","response_message":"Unauthorized","description":"bad"}`,
		`{"error":"mfa_required","mfa_token":"abc"}`,
		`{"access_token":"a","expires_in":1e400}`,
		`{"access_token":"a","expires_in":-1}`,
		`{"access_token":"a b","token_type":"mac"}`,
		`{"access_token":"a","scope":["read","write"]}`,
		`<html><body>502 Bad Gateway</body></html>`,
		`{"access_token":"abc`,
		`[]`, `null`, ``, `"x"`,
	} {
		f.Add([]byte(seed), 200)
		f.Add([]byte(seed), 400)
	}
	const secret = "fuzz-client-secret-value"
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		tok, _, err := parseTokenResponse(body, tokenOptions{now: now, requestedScope: "read", defaultLifetime: time.Minute})
		if err == nil {
			if tok.AccessToken.IsZero() {
				t.Fatal("a token without an access token was accepted")
			}
			if !tok.ExpiresAt.After(tok.IssuedAt) {
				t.Fatalf("token expires at %v, not after it was issued at %v", tok.ExpiresAt, tok.IssuedAt)
			}
			if tok.TokenType == "" || strings.ContainsAny(tok.TokenType, " \r\n") {
				t.Fatalf("token type %q cannot go in a header", tok.TokenType)
			}
		}

		c, perr := plan(Request{
			// The one query parameter an endpoint may carry; messages still never show it.
			Provider: Mbanq, TokenEndpoint: "https://bank.example/oauth/token?tenantIdentifier=q",
			Credentials: Credentials{ClientID: "id", ClientSecret: secret, Username: "u", Password: "p"},
		})
		if perr != nil {
			t.Fatal(perr)
		}
		if status < 100 || status > 999 {
			status = 400
		}
		e := c.failure(answer{status: status, header: http.Header{}, body: body}, nil, newMasker(c.req), now)
		if e.Class == "" || e.Reason == "" {
			t.Fatalf("unclassified failure: %+v", e)
		}
		if strings.Contains(e.Message, secret) || strings.Contains(e.Message, "tenantIdentifier=q") {
			t.Fatalf("message leaks: %q", e.Message)
		}
		if !utf8.ValidString(e.Message) {
			t.Fatalf("message is not valid UTF-8: %q", e.Message)
		}
	})
}
