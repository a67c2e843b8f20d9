package providers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// revocationServer answers every call with status and body, and records what it was sent.
type revocationServer struct {
	*httptest.Server
	form          url.Values
	authorization string
	path          string
	calls         int
}

func newRevocationServer(t *testing.T, status int, body string) *revocationServer {
	t.Helper()
	rs := &revocationServer{}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		rs.calls++
		rs.form, _ = url.ParseQuery(string(raw))
		rs.authorization, rs.path = r.Header.Get("Authorization"), r.URL.Path
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(rs.Close)
	return rs
}

func revocationRequest(p Name, tokenEndpoint string) Request {
	req := validRequest(p)
	req.TokenEndpoint, req.AllowInsecureHTTP = tokenEndpoint, true
	return req
}

func TestRevokeSendsTheTokenAndTheClientAuthenticationOfTheTokenCall(t *testing.T) {
	for _, tc := range []struct {
		provider  Name
		auth      ClientAuthentication
		wantBasic bool
	}{{Paymob, ClientAuthBasic, true}, {Paymob, ClientAuthBody, false}, {Banfico, "", true}} {
		rs := newRevocationServer(t, http.StatusOK, "")
		req := revocationRequest(tc.provider, rs.URL+"/o/token/")
		req.ClientAuthentication = tc.auth
		if err := NewClient(ClientOptions{Guard: loopbackGuard()}).Revoke(context.Background(), req, rs.URL+"/o/revoke_token/", "grant-to-end"); err != nil {
			t.Fatalf("%s %s: %v", tc.provider, tc.auth, err)
		}
		if rs.path != "/o/revoke_token/" || rs.form.Get("token") != "grant-to-end" || rs.form.Get("token_type_hint") != "refresh_token" {
			t.Errorf("%s %s: sent %s with token_type_hint=%q", tc.provider, tc.auth, rs.path, rs.form.Get("token_type_hint"))
		}
		for _, field := range []string{"grant_type", "scope", "refresh_token", "username", "password"} {
			if rs.form.Has(field) {
				t.Errorf("%s %s: a revocation carries %s", tc.provider, tc.auth, field)
			}
		}
		if gotBasic := strings.HasPrefix(rs.authorization, "Basic "); gotBasic != tc.wantBasic {
			t.Errorf("%s %s: Basic authorization %v, want %v", tc.provider, tc.auth, gotBasic, tc.wantBasic)
		}
		if !tc.wantBasic && (rs.form.Get("client_id") != "client" || rs.form.Get("client_secret") == "") {
			t.Errorf("%s %s: the client did not authenticate in the form", tc.provider, tc.auth)
		}
	}
}

func TestRevokeNeverSendsTheTokenToAnotherHost(t *testing.T) {
	rs := newRevocationServer(t, http.StatusOK, "")
	req := revocationRequest(Paymob, "http://bank.example/o/token/")
	err := NewClient(ClientOptions{Guard: loopbackGuard()}).Revoke(context.Background(), req, rs.URL+"/o/revoke_token/", "grant-to-end")
	var perr *Error
	if !errors.As(err, &perr) || perr.Class != ClassConfiguration || rs.calls != 0 {
		t.Fatalf("revocation on another host: err %v, %d calls; want a configuration error and no call", err, rs.calls)
	}
}

func TestRevokeFailuresAreClassifiedAndNeverShowTheToken(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		class  Class
	}{
		{http.StatusUnauthorized, `{"error":"invalid_client"}`, ClassPermanent},
		{http.StatusBadRequest, `{"error":"unsupported_token_type","error_description":"grant-to-end is not revocable"}`, ClassPermanent},
		{http.StatusServiceUnavailable, "", ClassTransient},
	} {
		rs := newRevocationServer(t, tc.status, tc.body)
		req := revocationRequest(Paymob, rs.URL+"/o/token/")
		err := NewClient(ClientOptions{Guard: loopbackGuard()}).Revoke(context.Background(), req, rs.URL+"/o/revoke_token/", "grant-to-end")
		var perr *Error
		if !errors.As(err, &perr) || perr.Class != tc.class {
			t.Errorf("%d %s: got %v, want class %s", tc.status, tc.body, err, tc.class)
			continue
		}
		if strings.Contains(perr.Message, "grant-to-end") || !strings.Contains(perr.Message, "revocation endpoint") {
			t.Errorf("%d: message %q shows the token or does not name the revocation endpoint", tc.status, perr.Message)
		}
	}
}

func TestDefaultRevocationEndpoint(t *testing.T) {
	for _, tc := range []struct {
		provider      Name
		tokenEndpoint string
		want          string
	}{
		{Paymob, "https://stagingpayouts.paymobsolutions.com/api/secure/o/token/", "https://stagingpayouts.paymobsolutions.com/api/secure/o/revoke_token/"},
		{Banfico, "https://auth.bank.example/auth/realms/provider/protocol/openid-connect/token", "https://auth.bank.example/auth/realms/provider/protocol/openid-connect/revoke"},
		{Paymob, "https://payouts.example/custom/token", ""},
		{Mbanq, "https://api.mbanq.example/oauth/token", ""},
		{RAKBank, "https://api.rakbank.example/v1/int_client_auth/token", ""},
		{OAuth2, "https://idp.example/o/token/", ""},
	} {
		if got := DefaultRevocationEndpoint(tc.provider, tc.tokenEndpoint); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.provider, tc.tokenEndpoint, got, tc.want)
		}
	}
}
