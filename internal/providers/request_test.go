package providers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func validRequest(p Name) Request {
	r := Request{
		Provider:      p,
		TokenEndpoint: "https://bank.example/token",
		Scope:         "accounts",
		Credentials:   Credentials{ClientID: "client", ClientSecret: "request-secret", Username: "user", Password: "request-password"},
	}
	switch p {
	case Mbanq:
		r.Headers = []Header{{Name: HeaderMbanqTenant, Value: "tenant"}}
	case RAKBankPartner:
		r.Metadata = map[string]string{"account_id": "0188000049916"}
	}
	return r
}

func TestPlanRefusesWhatThePresetCannotServe(t *testing.T) {
	cases := []struct {
		name       string
		mutate     func(*Request)
		wantReason string
	}{
		{"unknown provider", func(r *Request) { r.Provider = "Nope" }, ReasonInvalidProviderRequest},
		{"password grant for Banfico", func(r *Request) { r.Provider, r.GrantType = Banfico, GrantPassword }, ReasonUnsupportedGrantType},
		{"client_credentials for Paymob", func(r *Request) { r.GrantType = GrantClientCredentials }, ReasonUnsupportedGrantType},
		{"refresh_token as a primary grant", func(r *Request) { r.GrantType = GrantRefreshToken }, ReasonUnsupportedGrantType},
		{"refresh for RAKBANK partner, which issues no refresh tokens", func(r *Request) {
			*r = validRequest(RAKBankPartner)
			r.RefreshToken = "rt"
		}, ReasonUnsupportedGrantType},
		{"password grant without a username", func(r *Request) { r.Credentials.Username = "" }, ReasonInvalidProviderRequest},
		{"password grant without a password", func(r *Request) { r.Credentials.Password = "" }, ReasonInvalidProviderRequest},
		{"no client id", func(r *Request) { r.Credentials.ClientID = "" }, ReasonInvalidProviderRequest},
		{"Basic without a client secret", func(r *Request) { r.Credentials.ClientSecret = "" }, ReasonInvalidProviderRequest},
		{"Headers client authentication for Paymob", func(r *Request) { r.ClientAuthentication = ClientAuthHeaders }, ReasonInvalidProviderRequest},
		{"Body client authentication for Banfico", func(r *Request) { r.Provider, r.GrantType, r.ClientAuthentication = Banfico, "", ClientAuthBody }, ReasonInvalidProviderRequest},
		{"MBANQ without tenantId", func(r *Request) { *r = validRequest(Mbanq); r.Headers = nil }, ReasonInvalidProviderRequest},
		{"MBANQ with an empty tenantId", func(r *Request) { *r = validRequest(Mbanq); r.Headers[0].Value = "" }, ReasonInvalidProviderRequest},
		{"RAKBank without scope", func(r *Request) { r.Provider, r.GrantType, r.Scope = RAKBank, "", " " }, ReasonInvalidScope},
		{"RAKBANK partner scope over 500 characters", func(r *Request) { *r = validRequest(RAKBankPartner); r.Scope = strings.Repeat("s", 501) }, ReasonInvalidScope},
		{"metadata for a provider that does not send it", func(r *Request) { r.Metadata = map[string]string{"a": "b"} }, ReasonInvalidProviderRequest},
		{"http endpoint", func(r *Request) { r.TokenEndpoint = "http://bank.example/token" }, ReasonInsecureEndpoint},
		{"relative endpoint", func(r *Request) { r.TokenEndpoint = "/token" }, ReasonInvalidEndpoint},
		{"malformed endpoint", func(r *Request) { r.TokenEndpoint = "https://bank example/%zz" }, ReasonInvalidEndpoint},
		{"endpoint with user info", func(r *Request) { r.TokenEndpoint = "https://user:pw@bank.example/token" }, ReasonInvalidEndpoint},
		{"ftp endpoint", func(r *Request) { r.TokenEndpoint = "ftp://bank.example/token" }, ReasonInvalidEndpoint},
		{"header with a newline", func(r *Request) { r.Headers = []Header{{Name: "X-A", Value: "a\r\nInjected: 1"}} }, ReasonInvalidProviderRequest},
		{"header with an invalid name", func(r *Request) { r.Headers = []Header{{Name: "X A", Value: "a"}} }, ReasonInvalidProviderRequest},
		{"header overriding Authorization", func(r *Request) { r.Headers = []Header{{Name: "authorization", Value: "Bearer x"}} }, ReasonInvalidProviderRequest},
		{"header overriding MsgId", func(r *Request) { *r = validRequest(RAKBankPartner); r.Headers = []Header{{Name: "msgid", Value: "x"}} }, ReasonInvalidProviderRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := validRequest(Paymob)
			tc.mutate(&req)
			// No server exists at bank.example: a call would surface as a transport error.
			_, err := NewClient(ClientOptions{Guard: loopbackGuard()}).Fetch(context.Background(), req)
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("error = %v (%T), want *Error", err, err)
			}
			if e.Class != ClassConfiguration || e.Reason != tc.wantReason {
				t.Errorf("got %s/%s, want %s/%s: %s", e.Class, e.Reason, ClassConfiguration, tc.wantReason, e.Message)
			}
			for _, leak := range []string{"request-secret", "request-password", "pw@"} {
				if strings.Contains(e.Message, leak) {
					t.Errorf("message %q leaks %q", e.Message, leak)
				}
			}
		})
	}
}

func TestPlanAcceptsEveryPresetDefault(t *testing.T) {
	for _, name := range Names() {
		t.Run(string(name), func(t *testing.T) {
			if _, err := plan(validRequest(name)); err != nil {
				t.Fatalf("the preset's own defaults were refused: %v", err)
			}
		})
	}
}

func TestBasicCredentialsAreFormEncodedBeforeBase64(t *testing.T) {
	id, secret := "client:id&1", "s3cr:t %+ü"
	got := basicCredentials(id, secret)
	raw, err := base64.StdEncoding.DecodeString(got)
	if err != nil {
		t.Fatal(err)
	}
	if want := "client%3Aid%261:s3cr%3At+%25%2B%C3%BC"; string(raw) != want {
		t.Errorf("decoded Basic credentials = %q, want %q", raw, want)
	}
	encID, encSecret, _ := strings.Cut(string(raw), ":")
	if gotID, _ := url.QueryUnescape(encID); gotID != id {
		t.Errorf("id round-trips to %q, want %q", gotID, id)
	}
	if gotSecret, _ := url.QueryUnescape(encSecret); gotSecret != secret {
		t.Errorf("secret round-trips to a different value")
	}
}

type requestBodyCase struct {
	name        string
	req         func() Request
	wantType    string
	wantForm    url.Values
	wantJSON    string
	wantHeaders map[string]string
	noHeaders   []string
}

func requestBodyCases() []requestBodyCase {
	return []requestBodyCase{
		{
			name:        "Paymob password grant with Basic keeps the client out of the form",
			req:         func() Request { return validRequest(Paymob) },
			wantType:    "application/x-www-form-urlencoded",
			wantForm:    url.Values{"grant_type": {"password"}, "username": {"user"}, "password": {"request-password"}, "scope": {"accounts"}},
			wantHeaders: map[string]string{"Authorization": "Basic " + basicCredentials("client", "request-secret"), "Accept": "application/json"},
		},
		{
			name: "RAKBank client_credentials with body authentication",
			req: func() Request {
				r := validRequest(RAKBank)
				r.ClientAuthentication = ClientAuthBody
				return r
			},
			wantType:  "application/x-www-form-urlencoded",
			wantForm:  url.Values{"grant_type": {"client_credentials"}, "scope": {"accounts"}, "client_id": {"client"}, "client_secret": {"request-secret"}},
			noHeaders: []string{"Authorization"},
		},
		{
			name: "MBANQ password grant with the tenant and user-named device headers",
			req: func() Request {
				r := validRequest(Mbanq)
				r.Scope = ""
				r.Headers = append(r.Headers, Header{Name: "X-Device-Id", Value: "dev-1"})
				return r
			},
			wantType:    "application/x-www-form-urlencoded",
			wantForm:    url.Values{"grant_type": {"password"}, "username": {"user"}, "password": {"request-password"}, "client_id": {"client"}, "client_secret": {"request-secret"}},
			wantHeaders: map[string]string{"tenantId": "tenant", "X-Device-Id": "dev-1"},
			noHeaders:   []string{"Authorization"},
		},
		{
			name: "refresh sends the refresh token, not the password",
			req: func() Request {
				r := validRequest(Paymob)
				r.RefreshToken = "the-refresh-token"
				r.Scope = ""
				return r
			},
			wantType: "application/x-www-form-urlencoded",
			wantForm: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"the-refresh-token"}},
		},
		{
			name:        "RAKBANK partner sends JSON, vendor headers and a MsgId",
			req:         func() Request { return validRequest(RAKBankPartner) },
			wantType:    "application/json",
			wantJSON:    `{"grant_type":"client_credentials","scope":"accounts","oauth_metadata":{"account_id":"0188000049916"}}`,
			wantHeaders: map[string]string{HeaderIBMClientID: "client", HeaderIBMClientSecret: "request-secret", HeaderMsgID: "msg-1"},
			noHeaders:   []string{"Authorization"},
		},
	}
}

func TestRequestBody(t *testing.T) {
	cases := requestBodyCases()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, perr := plan(tc.req())
			if perr != nil {
				t.Fatal(perr)
			}
			r, perr := c.newHTTPRequest(context.Background(), "msg-1")
			if perr != nil {
				t.Fatal(perr)
			}
			if r.Method != "POST" {
				t.Errorf("method = %s, want POST", r.Method)
			}
			if got := r.Header.Get("Content-Type"); got != tc.wantType {
				t.Errorf("Content-Type = %q, want %q", got, tc.wantType)
			}
			body, _ := io.ReadAll(r.Body)
			if tc.wantForm != nil {
				got, err := url.ParseQuery(string(body))
				if err != nil {
					t.Fatal(err)
				}
				if !equalValues(got, tc.wantForm) {
					t.Errorf("form = %v, want %v", got, tc.wantForm)
				}
			}
			if tc.wantJSON != "" {
				var got, want any
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatal(err)
				}
				_ = json.Unmarshal([]byte(tc.wantJSON), &want)
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(want)
				if string(gb) != string(wb) {
					t.Errorf("JSON body = %s, want %s", gb, wb)
				}
			}
			for name, want := range tc.wantHeaders {
				// Exact key: the bank's own spelling must survive.
				if got := r.Header[name]; len(got) != 1 || got[0] != want {
					t.Errorf("header %s = %q, want %q", name, got, want)
				}
			}
			for _, name := range tc.noHeaders {
				if _, ok := r.Header[name]; ok {
					t.Errorf("header %s is set, want none", name)
				}
			}
		})
	}
}

func equalValues(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestPresets(t *testing.T) {
	cases := []struct {
		name        Name
		defGrant    GrantType
		grants      []GrantType
		defAuth     ClientAuthentication
		auths       []ClientAuthentication
		body        BodyEncoding
		refreshable bool
	}{
		{RAKBank, GrantClientCredentials, []GrantType{GrantClientCredentials, GrantPassword}, ClientAuthBasic, []ClientAuthentication{ClientAuthBasic, ClientAuthBody}, BodyForm, true},
		{RAKBankPartner, GrantClientCredentials, []GrantType{GrantClientCredentials}, ClientAuthHeaders, []ClientAuthentication{ClientAuthHeaders}, BodyJSON, false},
		{Banfico, GrantClientCredentials, []GrantType{GrantClientCredentials}, ClientAuthBasic, []ClientAuthentication{ClientAuthBasic, ClientAuthPrivateKeyJWT, ClientAuthTLS}, BodyForm, true},
		{Mbanq, GrantPassword, []GrantType{GrantPassword}, ClientAuthBody, []ClientAuthentication{ClientAuthBody}, BodyForm, true},
		{Paymob, GrantPassword, []GrantType{GrantPassword}, ClientAuthBasic, []ClientAuthentication{ClientAuthBasic, ClientAuthBody}, BodyForm, true},
		{OAuth2, GrantClientCredentials, []GrantType{GrantClientCredentials, GrantPassword}, ClientAuthBasic,
			[]ClientAuthentication{ClientAuthBasic, ClientAuthBody, ClientAuthPrivateKeyJWT, ClientAuthTLS, ClientAuthSelfSignedTLS}, BodyForm, true},
	}
	for _, tc := range cases {
		t.Run(string(tc.name), func(t *testing.T) {
			p, ok := PresetFor(tc.name)
			if !ok {
				t.Fatal("no preset")
			}
			if p.Name != tc.name || p.DefaultGrant != tc.defGrant || !slices.Equal(p.Grants, tc.grants) ||
				p.DefaultClientAuthentication != tc.defAuth || !slices.Equal(p.ClientAuthentications, tc.auths) ||
				p.Body != tc.body || p.SupportsRefresh != tc.refreshable {
				t.Errorf("preset = %+v", p)
			}
			p.Grants[0] = "mutated"
			if again, _ := PresetFor(tc.name); again.Grants[0] == "mutated" {
				t.Error("PresetFor shares its slices with callers")
			}
		})
	}
	if _, ok := PresetFor("Unknown"); ok {
		t.Error("PresetFor(Unknown) = ok")
	}
}

// CheckScope is the scope part of Check, alone: whatever Check says of a request's scope,
// CheckScope says of that scope under the same provider.
func TestCheckScopeAgreesWithCheck(t *testing.T) {
	for _, name := range Names() {
		for _, scope := range []string{"", "   ", "accounts", strings.Repeat("s", MaxPartnerScopeLength+1)} {
			req := validRequest(name)
			req.Scope = scope
			whole, alone := Check(req), CheckScope(name, scope)
			if (whole == nil) != (alone == nil) {
				t.Errorf("%s, scope of %d characters: Check says %v, CheckScope says %v", name, len(scope), whole, alone)
			}
		}
	}
	if err := CheckScope("NoSuchBank", "accounts"); err == nil {
		t.Error("CheckScope accepted an unknown provider")
	}
}
