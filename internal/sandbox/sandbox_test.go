package sandbox_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// raw is a hand-built token call, so the tests can break the contract on purpose.
type raw struct {
	method      string
	contentType string
	body        string
	header      map[string]string
	// basic is "id:secret" sent as-is (not form-encoded) unless basicEncoded.
	basic        string
	basicEncoded bool
	clientCert   bool
	// url is where the call goes; the bank's token endpoint when empty.
	url string
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func start(t *testing.T, opts sandbox.Options) *sandbox.Server {
	t.Helper()
	s, err := sandbox.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func send(t *testing.T, s *sandbox.Server, bank providers.Name, r raw) answer {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CABundle())
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if r.clientCert {
		certPEM, keyPEM := s.ClientCertificate()
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	target := r.url
	if target == "" {
		target = s.TokenURL(bank)
	}
	req, err := http.NewRequest(method, target, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.header {
		req.Header[k] = []string{v}
	}
	if r.basic != "" {
		id, secret, _ := strings.Cut(r.basic, ":")
		if r.basicEncoded {
			id, secret = url.QueryEscape(id), url.QueryEscape(secret)
		}
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(id+":"+secret)))
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: data}
	_ = json.Unmarshal(data, &a.body)
	return a
}

const form = "application/x-www-form-urlencoded"

func formBody(kv ...string) string {
	v := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

func partnerHeaders(c sandbox.BankCredentials, msgID string) map[string]string {
	// The header names as seeds/001 spells them, not the client's constants.
	return map[string]string{"X-IBM-Client-Id": c.ClientID, "X-IBM-Client-Secret": c.ClientSecret, "MsgId": msgID}
}

func mbanqHeaders(c sandbox.BankCredentials) map[string]string {
	h := map[string]string{}
	for _, x := range c.Headers {
		h[x.Name] = x.Value
	}
	return h
}

func errorCode(a answer) string {
	if s, ok := a.body["error"].(string); ok {
		return s
	}
	s, _ := a.body["response_code"].(string)
	return s
}

// contractCase is one call to a sandbox bank and the answer its contract gives.
type contractCase struct {
	name       string
	bank       providers.Name
	call       raw
	wantStatus int
	wantError  string
	// wantFields lists the exact keys of an accepted answer.
	wantFields []string
}

// rakbankContract is RAKBANK internal client auth.
func rakbankContract(s *sandbox.Server) []contractCase {
	rak := s.Credentials(providers.RAKBank)
	return []contractCase{
		{name: "RAKBank accepts client_credentials with encoded Basic and returns a refresh token", bank: providers.RAKBank,
			call:       raw{contentType: form, basic: rak.ClientID + ":" + rak.ClientSecret, basicEncoded: true, body: formBody("grant_type", "client_credentials", "scope", "accounts")},
			wantStatus: 200, wantFields: []string{"access_token", "expires_in", "refresh_token", "scope", "token_type"}},
		{name: "RAKBank accepts password with form credentials and returns a refresh token", bank: providers.RAKBank,
			call:       raw{contentType: form, body: formBody("grant_type", "password", "scope", "accounts", "client_id", rak.ClientID, "client_secret", rak.ClientSecret, "username", rak.Username, "password", rak.Password)},
			wantStatus: 200, wantFields: []string{"access_token", "expires_in", "refresh_token", "scope", "token_type"}},
		{name: "RAKBank refuses a JSON body", bank: providers.RAKBank,
			call:       raw{contentType: "application/json", basic: rak.ClientID + ":" + rak.ClientSecret, body: `{"grant_type":"client_credentials","scope":"accounts"}`},
			wantStatus: 415, wantError: "invalid_request"},
		{name: "RAKBank refuses a call without scope", bank: providers.RAKBank,
			call:       raw{contentType: form, basic: rak.ClientID + ":" + rak.ClientSecret, body: formBody("grant_type", "client_credentials")},
			wantStatus: 400, wantError: "invalid_request"},
		{name: "RAKBank refuses Basic and form credentials together", bank: providers.RAKBank,
			call:       raw{contentType: form, basic: rak.ClientID + ":" + rak.ClientSecret, body: formBody("grant_type", "client_credentials", "scope", "accounts", "client_secret", rak.ClientSecret)},
			wantStatus: 400, wantError: "invalid_request"},
		{name: "RAKBank refuses a parameter sent twice", bank: providers.RAKBank,
			call:       raw{contentType: form, basic: rak.ClientID + ":" + rak.ClientSecret, body: "grant_type=client_credentials&scope=accounts&scope=payments"},
			wantStatus: 400, wantError: "invalid_request"},
		{name: "RAKBank refuses authorization_code", bank: providers.RAKBank,
			call:       raw{contentType: form, basic: rak.ClientID + ":" + rak.ClientSecret, body: formBody("grant_type", "authorization_code", "scope", "accounts", "code", "x")},
			wantStatus: 400, wantError: "unsupported_grant_type"},
		{name: "RAKBank refuses GET", bank: providers.RAKBank, call: raw{method: http.MethodGet}, wantStatus: 405, wantError: "invalid_request"},
		{name: "RAKBank refuses a wrong secret", bank: providers.RAKBank,
			call:       raw{contentType: form, basic: rak.ClientID + ":demo-wrong", body: formBody("grant_type", "client_credentials", "scope", "accounts")},
			wantStatus: 401, wantError: "invalid_client"},
	}
}

// rakbankPartnerContract is RAKBANK partner auth.
func rakbankPartnerContract(s *sandbox.Server) []contractCase {
	partner := s.Credentials(providers.RAKBankPartner)
	partnerBody := `{"grant_type":"client_credentials","scope":"accounts","oauth_metadata":{"account_id":"0188000049916"}}`
	reusedMsgID := uuid.NewString()
	return []contractCase{
		{name: "RAKBankPartner accepts JSON, IBM headers, a MsgId and a client certificate", bank: providers.RAKBankPartner,
			call:       raw{contentType: "application/json", header: partnerHeaders(partner, uuid.NewString()), body: partnerBody, clientCert: true},
			wantStatus: 200, wantFields: []string{"access_token", "expires_in", "scope", "token_type"}},
		{name: "RAKBankPartner refuses a call without a client certificate", bank: providers.RAKBankPartner,
			call:       raw{contentType: "application/json", header: partnerHeaders(partner, uuid.NewString()), body: partnerBody},
			wantStatus: 401, wantError: "AUTH-001"},
		{name: "RAKBankPartner refuses a form body", bank: providers.RAKBankPartner,
			call:       raw{contentType: form, header: partnerHeaders(partner, uuid.NewString()), body: formBody("grant_type", "client_credentials", "scope", "accounts"), clientCert: true},
			wantStatus: 415, wantError: "REQ-001"},
		{name: "RAKBankPartner refuses a missing MsgId", bank: providers.RAKBankPartner,
			call:       raw{contentType: "application/json", header: partnerHeaders(partner, ""), body: partnerBody, clientCert: true},
			wantStatus: 400, wantError: "MSG-001"},
		{name: "RAKBankPartner refuses a MsgId that is not a UUID", bank: providers.RAKBankPartner,
			call:       raw{contentType: "application/json", header: partnerHeaders(partner, "message-1"), body: partnerBody, clientCert: true},
			wantStatus: 400, wantError: "MSG-002"},
		{name: "RAKBankPartner accepts a MsgId once", bank: providers.RAKBankPartner,
			call:       raw{contentType: "application/json", header: partnerHeaders(partner, reusedMsgID), body: partnerBody, clientCert: true},
			wantStatus: 200, wantFields: []string{"access_token", "expires_in", "scope", "token_type"}},
		{name: "RAKBankPartner refuses the same MsgId twice", bank: providers.RAKBankPartner,
			call:       raw{contentType: "application/json", header: partnerHeaders(partner, reusedMsgID), body: partnerBody, clientCert: true},
			wantStatus: 400, wantError: "MSG-003"},
		{name: "RAKBankPartner refuses unknown JSON fields", bank: providers.RAKBankPartner,
			call:       raw{contentType: "application/json", header: partnerHeaders(partner, uuid.NewString()), body: `{"grant_type":"client_credentials","scope":"accounts","client_id":"x"}`, clientCert: true},
			wantStatus: 400, wantError: "REQ-002"},
		{name: "RAKBankPartner refuses data after the JSON object", bank: providers.RAKBankPartner,
			call:       raw{contentType: "application/json", header: partnerHeaders(partner, uuid.NewString()), body: partnerBody + `{}`, clientCert: true},
			wantStatus: 400, wantError: "REQ-002"},
		{name: "RAKBankPartner refuses Basic in place of the IBM headers", bank: providers.RAKBankPartner,
			call:       raw{contentType: "application/json", header: map[string]string{"MsgId": uuid.NewString()}, basic: partner.ClientID + ":" + partner.ClientSecret, body: partnerBody, clientCert: true},
			wantStatus: 400, wantError: "AUTH-002"},
		{name: "RAKBankPartner refuses the password grant", bank: providers.RAKBankPartner,
			call:       raw{contentType: "application/json", header: partnerHeaders(partner, uuid.NewString()), body: `{"grant_type":"password","scope":"accounts"}`, clientCert: true},
			wantStatus: 400, wantError: "REQ-003"},
		{name: "RAKBankPartner refuses a scope over 500 characters", bank: providers.RAKBankPartner,
			call:       raw{contentType: "application/json", header: partnerHeaders(partner, uuid.NewString()), body: `{"grant_type":"client_credentials","scope":"` + strings.Repeat("a", 501) + `"}`, clientCert: true},
			wantStatus: 400, wantError: "REQ-004"},
		{name: "RAKBankPartner refuses the accounts scope without account_id", bank: providers.RAKBankPartner,
			call:       raw{contentType: "application/json", header: partnerHeaders(partner, uuid.NewString()), body: `{"grant_type":"client_credentials","scope":"accounts"}`, clientCert: true},
			wantStatus: 400, wantError: "REQ-006"},
	}
}

// keycloakAndMbanqContracts are Banfico (Keycloak) and MBANQ.
func keycloakAndMbanqContracts(s *sandbox.Server) []contractCase {
	banfico, mbanq := s.Credentials(providers.Banfico), s.Credentials(providers.Mbanq)
	return []contractCase{
		// Banfico (Keycloak).
		{name: "Banfico answers the documented request, with no scope, with an offline refresh token", bank: providers.Banfico,
			call:       raw{contentType: form, basic: banfico.ClientID + ":" + banfico.ClientSecret, basicEncoded: true, body: formBody("grant_type", "client_credentials")},
			wantStatus: 200, wantFields: []string{"access_token", "expires_in", "not-before-policy", "refresh_expires_in", "refresh_token", "scope", "session_state", "token_type"}},
		{name: "Banfico gives no refresh token for a scope without offline_access", bank: providers.Banfico,
			call:       raw{contentType: form, basic: banfico.ClientID + ":" + banfico.ClientSecret, basicEncoded: true, body: formBody("grant_type", "client_credentials", "scope", "profile email")},
			wantStatus: 200, wantFields: []string{"access_token", "expires_in", "not-before-policy", "refresh_expires_in", "scope", "session_state", "token_type"}},
		{name: "Banfico refuses credentials in the form", bank: providers.Banfico,
			call:       raw{contentType: form, body: formBody("grant_type", "client_credentials", "client_id", banfico.ClientID, "client_secret", banfico.ClientSecret)},
			wantStatus: 401, wantError: "unauthorized_client"},
		{name: "Banfico refuses the password grant", bank: providers.Banfico,
			call:       raw{contentType: form, basic: banfico.ClientID + ":" + banfico.ClientSecret, body: formBody("grant_type", "password", "username", "u", "password", "p")},
			wantStatus: 400, wantError: "unauthorized_client"},
		// MBANQ.
		{name: "Mbanq accepts the password grant with the tenant and device headers", bank: providers.Mbanq,
			call:       raw{contentType: form, header: mbanqHeaders(mbanq), body: formBody("grant_type", "password", "username", mbanq.Username, "password", mbanq.Password, "client_id", mbanq.ClientID, "client_secret", mbanq.ClientSecret)},
			wantStatus: 200, wantFields: []string{"access_token", "expires_in", "refresh_token", "token_type"}},
		{name: "Mbanq refuses a call without tenantId", bank: providers.Mbanq,
			call:       raw{contentType: form, body: formBody("grant_type", "password", "username", mbanq.Username, "password", mbanq.Password, "client_id", mbanq.ClientID, "client_secret", mbanq.ClientSecret)},
			wantStatus: 400, wantError: "invalid_request"},
		{name: "Mbanq refuses another tenant", bank: providers.Mbanq,
			call: raw{contentType: form, header: map[string]string{"tenantId": "other", "X-Device-IP": "192.0.2.10", "X-Device-Id": "demo-device-0001"},
				body: formBody("grant_type", "password", "username", mbanq.Username, "password", mbanq.Password, "client_id", mbanq.ClientID, "client_secret", mbanq.ClientSecret)},
			wantStatus: 400, wantError: "invalid_request"},
		{name: "Mbanq refuses Basic client authentication", bank: providers.Mbanq,
			call:       raw{contentType: form, header: mbanqHeaders(mbanq), basic: mbanq.ClientID + ":" + mbanq.ClientSecret, body: formBody("grant_type", "password", "username", mbanq.Username, "password", mbanq.Password)},
			wantStatus: 401, wantError: "invalid_client"},
		{name: "Mbanq refuses client_credentials", bank: providers.Mbanq,
			call:       raw{contentType: form, header: mbanqHeaders(mbanq), body: formBody("grant_type", "client_credentials", "client_id", mbanq.ClientID, "client_secret", mbanq.ClientSecret)},
			wantStatus: 400, wantError: "unsupported_grant_type"},
	}
}

// paymobContract is Paymob (Django OAuth Toolkit).
func paymobContract(s *sandbox.Server) []contractCase {
	paymob := s.Credentials(providers.Paymob)
	return []contractCase{
		{name: "Paymob accepts the password grant with encoded Basic", bank: providers.Paymob,
			call:       raw{contentType: form, basic: paymob.ClientID + ":" + paymob.ClientSecret, basicEncoded: true, body: formBody("grant_type", "password", "username", paymob.Username, "password", paymob.Password)},
			wantStatus: 200, wantFields: []string{"access_token", "expires_in", "refresh_token", "scope", "token_type"}},
		{name: "Paymob accepts the password grant with form credentials", bank: providers.Paymob,
			call:       raw{contentType: form, body: formBody("grant_type", "password", "username", paymob.Username, "password", paymob.Password, "client_id", paymob.ClientID, "client_secret", paymob.ClientSecret)},
			wantStatus: 200, wantFields: []string{"access_token", "expires_in", "refresh_token", "scope", "token_type"}},
		{name: "Paymob refuses Basic that is not form-encoded (RFC 6749 §2.3.1)", bank: providers.Paymob,
			call:       raw{contentType: form, basic: paymob.ClientID + ":" + paymob.ClientSecret, body: formBody("grant_type", "password", "username", paymob.Username, "password", paymob.Password)},
			wantStatus: 401, wantError: "invalid_client"},
		{name: "Paymob refuses a wrong password", bank: providers.Paymob,
			call:       raw{contentType: form, basic: paymob.ClientID + ":" + paymob.ClientSecret, basicEncoded: true, body: formBody("grant_type", "password", "username", paymob.Username, "password", "demo-wrong")},
			wantStatus: 400, wantError: "invalid_grant"},
		{name: "Paymob refuses client_credentials", bank: providers.Paymob,
			call:       raw{contentType: form, basic: paymob.ClientID + ":" + paymob.ClientSecret, basicEncoded: true, body: formBody("grant_type", "client_credentials")},
			wantStatus: 400, wantError: "unauthorized_client"},
		{name: "Paymob refuses an unknown refresh token", bank: providers.Paymob,
			call:       raw{contentType: form, basic: paymob.ClientID + ":" + paymob.ClientSecret, basicEncoded: true, body: formBody("grant_type", "refresh_token", "refresh_token", "demo-unknown")},
			wantStatus: 400, wantError: "invalid_grant"},
	}
}

// TestContracts states, bank by bank, what each fake accepts and what it refuses.
func TestContracts(t *testing.T) {
	s := start(t, sandbox.Options{})
	cases := slices.Concat(rakbankContract(s), rakbankPartnerContract(s), keycloakAndMbanqContracts(s), paymobContract(s))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Requests(tc.bank)
			a := send(t, s, tc.bank, tc.call)
			if a.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%v)", a.status, tc.wantStatus, a.body)
			}
			if got := errorCode(a); got != tc.wantError {
				t.Errorf("error = %q, want %q", got, tc.wantError)
			}
			if tc.wantFields != nil {
				var keys []string
				for k := range a.body {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if !slices.Equal(keys, tc.wantFields) {
					t.Errorf("answer fields = %v, want %v", keys, tc.wantFields)
				}
				if tt := a.body["token_type"].(string); !strings.EqualFold(tt, "bearer") {
					t.Errorf("token_type = %q", tt)
				}
				checkExpiresIn(t, tc.bank, a.body["expires_in"])
			}
			if s.Requests(tc.bank) != before+1 {
				t.Errorf("Requests went from %d to %d, want one more", before, s.Requests(tc.bank))
			}
			calls := s.Calls(tc.bank)
			if last := calls[len(calls)-1]; last.Accepted() != (tc.wantStatus == 200) || last.Status != tc.wantStatus {
				t.Errorf("recorded call = %+v", last)
			}
		})
	}
}

// checkExpiresIn: Paymob's response table types expires_in as a String; the others send
// a JSON number.
func checkExpiresIn(t *testing.T, bank providers.Name, expiresIn any) {
	t.Helper()
	if bank == providers.Paymob {
		if s, ok := expiresIn.(string); !ok || s == "" || strings.Trim(s, "0123456789") != "" {
			t.Errorf("expires_in = %#v, want a string of digits", expiresIn)
		}
		return
	}
	if _, ok := expiresIn.(float64); !ok {
		t.Errorf("expires_in = %#v, want a JSON number", expiresIn)
	}
}

func TestMbanqSecondFactor(t *testing.T) {
	s := start(t, sandbox.Options{})
	c := s.Credentials(providers.Mbanq)
	s.SetSecondFactorRequired(c.Username, true)
	call := raw{contentType: form, header: mbanqHeaders(c), body: formBody("grant_type", "password", "username", c.Username, "password", c.Password, "client_id", c.ClientID, "client_secret", c.ClientSecret)}
	a := send(t, s, providers.Mbanq, call)
	if a.status != 403 || errorCode(a) != "mfa_required" || a.body["mfa_token"] == nil {
		t.Fatalf("answer = %d %v, want 403 mfa_required with an mfa_token", a.status, a.body)
	}
	s.SetSecondFactorRequired(c.Username, false)
	if a := send(t, s, providers.Mbanq, call); a.status != 200 {
		t.Fatalf("after the challenge is lifted: %d %v", a.status, a.body)
	}
	if got := s.Issued(providers.Mbanq, "password"); got != 1 {
		t.Errorf("Issued = %d, want 1", got)
	}
}

func TestRAKBankPartnerRefusesAClientCertificateFromAnotherCA(t *testing.T) {
	s := start(t, sandbox.Options{})
	other, err := sandbox.NewCertificateAuthority("other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := other.Issue(sandbox.Leaf{CommonName: "intruder", Client: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	pair, _ := tls.X509KeyPair(certPEM, keyPEM)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CABundle())
	// Present it even though the server's CertificateRequest names another CA.
	present := func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, GetClientCertificate: present}}}
	resp, err := client.Post(s.TokenURL(providers.RAKBankPartner), "application/json", strings.NewReader(`{}`))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("the handshake succeeded with status %d", resp.StatusCode)
	}
	if s.Issued(providers.RAKBankPartner, "client_credentials") != 0 {
		t.Error("a token was issued")
	}
}

func TestTokensExpireByTheServersClock(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := start(t, sandbox.Options{Now: clock, Lifetimes: map[providers.Name]time.Duration{providers.Paymob: 20 * time.Second}})
	c := s.Credentials(providers.Paymob)
	a := send(t, s, providers.Paymob, raw{contentType: form, body: formBody("grant_type", "password", "username", c.Username, "password", c.Password, "client_id", c.ClientID, "client_secret", c.ClientSecret)})
	if a.body["expires_in"] != "20" {
		t.Fatalf("expires_in = %#v, want \"20\"", a.body["expires_in"])
	}
	token := a.body["access_token"].(string)
	if !s.AccessTokenValid(providers.Paymob, token) {
		t.Fatal("a fresh token is not valid")
	}
	if s.AccessTokenValid(providers.Banfico, token) {
		t.Error("one bank accepts another bank's token")
	}
	mu.Lock()
	now = now.Add(21 * time.Second)
	mu.Unlock()
	if s.AccessTokenValid(providers.Paymob, token) {
		t.Error("the token is still valid after its lifetime")
	}
}

func TestOutagesAndRateLimits(t *testing.T) {
	s := start(t, sandbox.Options{})
	c := s.Credentials(providers.Banfico)
	call := raw{contentType: form, basic: c.ClientID + ":" + c.ClientSecret, basicEncoded: true, body: formBody("grant_type", "client_credentials")}

	s.SetRateLimited(providers.Banfico, 1500*time.Millisecond)
	a := send(t, s, providers.Banfico, call)
	if a.status != 429 || a.header.Get("Retry-After") != "2" {
		t.Errorf("rate limited: %d Retry-After %q, want 429 and 2 (seconds, rounded up)", a.status, a.header.Get("Retry-After"))
	}
	s.SetRateLimited(providers.Banfico, 0)

	s.SetUnavailable(providers.Banfico, true)
	a = send(t, s, providers.Banfico, call)
	if a.status != 503 || a.header.Get("Retry-After") != "" || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Errorf("unavailable: %d Retry-After %q Content-Type %q", a.status, a.header.Get("Retry-After"), a.header.Get("Content-Type"))
	}
	s.SetUnavailable(providers.Banfico, false)

	if a = send(t, s, providers.Banfico, call); a.status != 200 {
		t.Errorf("after recovery: %d", a.status)
	}
	if got, want := len(s.Rejected(providers.Banfico)), 2; got != want {
		t.Errorf("Rejected = %d calls, want %d", got, want)
	}
}

func TestCredentialRotation(t *testing.T) {
	s := start(t, sandbox.Options{})
	old := s.Credentials(providers.RAKBank)
	rotated := s.RotateClientSecret(providers.RAKBank)
	if rotated.ClientSecret == old.ClientSecret || s.Credentials(providers.RAKBank).ClientSecret != rotated.ClientSecret {
		t.Fatalf("secret not rotated")
	}
	body := formBody("grant_type", "client_credentials", "scope", "accounts")
	if a := send(t, s, providers.RAKBank, raw{contentType: form, basic: old.ClientID + ":" + old.ClientSecret, basicEncoded: true, body: body}); a.status != 401 {
		t.Errorf("old secret: %d, want 401", a.status)
	}
	if a := send(t, s, providers.RAKBank, raw{contentType: form, basic: rotated.ClientID + ":" + rotated.ClientSecret, basicEncoded: true, body: body}); a.status != 200 {
		t.Errorf("new secret: %d, want 200", a.status)
	}
}

func TestServerAddresses(t *testing.T) {
	s := start(t, sandbox.Options{})
	for _, b := range sandbox.Banks() {
		u, err := url.Parse(s.TokenURL(b))
		if err != nil || u.Scheme != "https" || u.Hostname() != "127.0.0.1" {
			t.Errorf("%s: TokenURL %q", b, s.TokenURL(b))
		}
	}
	if s.TokenURL(providers.OAuth2) != "" {
		t.Error("OAuth2 is not a bank but has a URL")
	}
	if got := s.TokenURL(providers.Paymob); !strings.HasSuffix(got, "/paymob/api/secure/o/token/") {
		t.Errorf("Paymob URL %q", got)
	}
	certPEM, _ := s.ClientCertificate()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CABundle()) || len(certPEM) == 0 {
		t.Error("CA bundle or client certificate is not PEM")
	}
}
