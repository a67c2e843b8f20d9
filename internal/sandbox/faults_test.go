package sandbox_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// faultyCall is what a client saw of one call to a faulty bank.
type faultyCall struct {
	status int
	body   []byte
	err    error // of the request or of reading the body
}

// callWithTimeout sends Banfico's offline client_credentials call with a client timeout.
func callWithTimeout(t *testing.T, s *sandbox.Server, grantBody string, timeout time.Duration) faultyCall {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CABundle())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, Timeout: timeout}
	defer client.CloseIdleConnections()
	c := s.Credentials(providers.Banfico)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.TokenURL(providers.Banfico), strings.NewReader(grantBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", form)
	req.SetBasicAuth(c.ClientID, c.ClientSecret)
	resp, err := client.Do(req)
	if err != nil {
		return faultyCall{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return faultyCall{status: resp.StatusCode, body: body, err: err}
}

func TestFaultsAnswerInsteadOfTheBank(t *testing.T) {
	offline := formBody("grant_type", "client_credentials", "scope", "profile offline_access")
	refresh := formBody("grant_type", "refresh_token", "refresh_token", "demo-unknown")
	for _, tc := range []struct {
		fault      sandbox.Fault
		body       string
		wantStatus int
		wantInBody string
	}{
		{sandbox.FaultServerError, offline, 500, `"server_error"`},
		{sandbox.FaultGatewayHTMLPage, offline, 502, "<html>"},
		{sandbox.FaultInvalidGrantOnPrimary, offline, 400, `"invalid_grant"`},
		{sandbox.FaultInvalidGrantOnRefresh, refresh, 400, `"invalid_grant"`},
		{sandbox.FaultInvalidGrantOnRefresh, offline, 200, `"access_token"`},
		{sandbox.FaultGateway401OnRefresh, refresh, 401, `{"httpCode":"401","httpMessage":"Unauthorized","moreInformation":"Invalid client id or secret."}`},
		{sandbox.FaultGateway401OnRefresh, offline, 200, `"access_token"`},
		{sandbox.FaultHTML400OnRefresh, refresh, 400, "<html>"},
		{sandbox.FaultHTML400OnRefresh, offline, 200, `"access_token"`},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			s := start(t, sandbox.Options{})
			s.SetFault(providers.Banfico, tc.fault)
			got := callWithTimeout(t, s, tc.body, 5*time.Second)
			if tc.fault.String() == "" {
				t.Error("the fault has no name")
			}
			if got.err != nil || got.status != tc.wantStatus || !strings.Contains(string(got.body), tc.wantInBody) {
				t.Errorf("got %d %q (%v), want %d with %s", got.status, got.body, got.err, tc.wantStatus, tc.wantInBody)
			}
			if tc.wantStatus != 200 && s.Issued(providers.Banfico, "client_credentials") != 0 {
				t.Error("the bank issued a token behind a fault that answers instead of it")
			}
		})
	}
}

func TestFaultsSpoilTheBanksAnswerAfterItActed(t *testing.T) {
	offline := formBody("grant_type", "client_credentials", "scope", "profile offline_access")
	for _, tc := range []struct {
		fault sandbox.Fault
		check func(faultyCall) bool
	}{
		{sandbox.FaultTimeout, func(c faultyCall) bool { return c.err != nil }},
		{sandbox.FaultOneBytePerSecond, func(c faultyCall) bool { return c.err != nil }},
		{sandbox.FaultResetMidBody, func(c faultyCall) bool { return c.err != nil }},
		{sandbox.FaultTruncatedJSON, func(c faultyCall) bool {
			return c.err == nil && c.status == 200 && strings.HasPrefix(string(c.body), "{") && !strings.HasSuffix(string(c.body), "}")
		}},
		{sandbox.FaultHugeBody, func(c faultyCall) bool { return c.err == nil && c.status == 200 && len(c.body) > 2<<20 }},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			s := start(t, sandbox.Options{})
			s.SetFault(providers.Banfico, tc.fault)
			got := callWithTimeout(t, s, offline, 1500*time.Millisecond)
			if !tc.check(got) {
				t.Errorf("the client saw %d, %d bytes, error %v", got.status, len(got.body), got.err)
			}
			if s.Issued(providers.Banfico, "client_credentials") != 1 {
				t.Error("the bank did not act on the call before its answer was spoiled")
			}
		})
	}
}

func TestTLSFaultsFailTheHandshakeUntilCleared(t *testing.T) {
	offline := formBody("grant_type", "client_credentials", "scope", "profile")
	s := start(t, sandbox.Options{})
	for fault, want := range map[sandbox.TLSFault]any{
		sandbox.TLSFaultUnknownCA:          x509.UnknownAuthorityError{},
		sandbox.TLSFaultExpiredCertificate: x509.CertificateInvalidError{},
	} {
		if err := s.SetTLSFault(fault); err != nil {
			t.Fatal(err)
		}
		got := callWithTimeout(t, s, offline, 5*time.Second)
		var unknown x509.UnknownAuthorityError
		var invalid x509.CertificateInvalidError
		matched := (errors.As(got.err, &unknown) && fault == sandbox.TLSFaultUnknownCA) ||
			(errors.As(got.err, &invalid) && invalid.Reason == x509.Expired && fault == sandbox.TLSFaultExpiredCertificate)
		if !matched || s.TLSFaultHandshakes() != 1 {
			t.Errorf("%s: error %v (want a %T), %d handshakes counted", fault, got.err, want, s.TLSFaultHandshakes())
		}
	}
	if err := s.SetTLSFault(sandbox.NoTLSFault); err != nil {
		t.Fatal(err)
	}
	if got := callWithTimeout(t, s, offline, 5*time.Second); got.err != nil || got.status != 200 {
		t.Errorf("after clearing: %d %v", got.status, got.err)
	}
}
