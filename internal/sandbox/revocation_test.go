package sandbox_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// paymobLogin is Paymob's password grant with encoded Basic.
func paymobLogin(c sandbox.BankCredentials) raw {
	return raw{contentType: form, basic: c.ClientID + ":" + c.ClientSecret, basicEncoded: true,
		body: formBody("grant_type", "password", "username", c.Username, "password", c.Password)}
}

func paymobRefresh(c sandbox.BankCredentials, refreshToken string) raw {
	return raw{contentType: form, basic: c.ClientID + ":" + c.ClientSecret, basicEncoded: true,
		body: formBody("grant_type", "refresh_token", "refresh_token", refreshToken)}
}

// revoke is an RFC 7009 call with the bank's client by Basic; kv adds form fields.
func revoke(s *sandbox.Server, bank providers.Name, c sandbox.BankCredentials, kv ...string) raw {
	return raw{url: s.RevocationURL(bank), contentType: form, basic: c.ClientID + ":" + c.ClientSecret, basicEncoded: true, body: formBody(kv...)}
}

// tokens is what a grant answered: its access and refresh token.
type tokens struct{ access, refresh string }

func grant(t *testing.T, s *sandbox.Server, bank providers.Name, call raw) tokens {
	t.Helper()
	a := send(t, s, bank, call)
	if a.status != 200 {
		t.Fatalf("%s grant: %d %v", bank, a.status, a.body)
	}
	refresh, _ := a.body["refresh_token"].(string)
	return tokens{access: a.body["access_token"].(string), refresh: refresh}
}

func lastRevocation(t *testing.T, s *sandbox.Server, bank providers.Name) sandbox.Revocation {
	t.Helper()
	all := s.Revocations(bank)
	if len(all) == 0 {
		t.Fatal("no revocation recorded")
	}
	return all[len(all)-1]
}

func TestRevocationURLsWhereTheRealServerHasOne(t *testing.T) {
	s := start(t, sandbox.Options{})
	for bank, suffix := range map[providers.Name]string{
		providers.Paymob:  "/paymob/api/secure/o/revoke_token/",
		providers.Banfico: "/banfico/auth/realms/provider/protocol/openid-connect/revoke",
	} {
		if got := s.RevocationURL(bank); !strings.HasPrefix(got, s.URL()) || !strings.HasSuffix(got, suffix) {
			t.Errorf("%s: RevocationURL = %q, want %s%s", bank, got, s.URL(), suffix)
		}
	}
	for _, bank := range []providers.Name{providers.RAKBank, providers.RAKBankPartner, providers.Mbanq, sandbox.SignedJWTRealm, sandbox.MTLSServer, providers.OAuth2} {
		if got := s.RevocationURL(bank); got != "" {
			t.Errorf("%s: RevocationURL = %q, want none", bank, got)
		}
	}
}

func TestPaymobRevokingARefreshTokenRevokesItAndTheAccessTokenIssuedWithIt(t *testing.T) {
	s := start(t, sandbox.Options{})
	c := s.Credentials(providers.Paymob)
	first, other := grant(t, s, providers.Paymob, paymobLogin(c)), grant(t, s, providers.Paymob, paymobLogin(c))

	a := send(t, s, providers.Paymob, revoke(s, providers.Paymob, c, "token", first.refresh, "token_type_hint", "refresh_token"))
	if a.status != 200 || len(a.raw) != 0 {
		t.Fatalf("revocation: %d %q, want 200 with an empty body", a.status, a.raw)
	}
	if s.RefreshTokenValid(providers.Paymob, first.refresh) || s.AccessTokenValid(providers.Paymob, first.access) {
		t.Error("the revoked refresh token or the access token issued with it still works")
	}
	if !s.RefreshTokenValid(providers.Paymob, other.refresh) || !s.AccessTokenValid(providers.Paymob, other.access) {
		t.Error("another grant's tokens stopped working")
	}
	if got := send(t, s, providers.Paymob, paymobRefresh(c, first.refresh)); got.status != 400 || errorCode(got) != "invalid_grant" {
		t.Errorf("refresh with the revoked token: %d %v, want 400 invalid_grant", got.status, got.body)
	}
	if rv := lastRevocation(t, s, providers.Paymob); rv.Status != 200 || !rv.Revoked || rv.TokenTypeHint != "refresh_token" || rv.At.IsZero() {
		t.Errorf("recorded %+v", rv)
	}
}

func TestKeycloakRevokingAnOfflineTokenEndsItsWholeSession(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.SetRevokeRefreshToken(providers.Banfico, true)
	c := s.Credentials(providers.Banfico)
	first := grant(t, s, providers.Banfico, banficoOfflineGrant(c))
	second := grant(t, s, providers.Banfico, banficoRefresh(c, first.refresh))
	other := grant(t, s, providers.Banfico, banficoOfflineGrant(c))

	// No hint: RFC 7009 §2.1 makes it optional.
	if a := send(t, s, providers.Banfico, revoke(s, providers.Banfico, c, "token", second.refresh)); a.status != 200 || len(a.raw) != 0 {
		t.Fatalf("revocation: %d %q", a.status, a.raw)
	}
	for name, valid := range map[string]bool{
		"the first access token":    s.AccessTokenValid(providers.Banfico, first.access),
		"the rotated access token":  s.AccessTokenValid(providers.Banfico, second.access),
		"the revoked refresh token": s.RefreshTokenValid(providers.Banfico, second.refresh),
		"the spent refresh token":   s.RefreshTokenValid(providers.Banfico, first.refresh),
		"another session's refresh": !s.RefreshTokenValid(providers.Banfico, other.refresh),
		"another session's access":  !s.AccessTokenValid(providers.Banfico, other.access),
	} {
		if valid {
			t.Errorf("%s: wrong validity after the session was ended", name)
		}
	}
	if rv := lastRevocation(t, s, providers.Banfico); !rv.Revoked || rv.TokenTypeHint != "" {
		t.Errorf("recorded %+v", rv)
	}
}

func TestRevokingAnAccessTokenRevokesJustIt(t *testing.T) {
	s := start(t, sandbox.Options{})
	for bank, login := range map[providers.Name]raw{
		providers.Paymob:  paymobLogin(s.Credentials(providers.Paymob)),
		providers.Banfico: banficoOfflineGrant(s.Credentials(providers.Banfico)),
	} {
		c := s.Credentials(bank)
		issued := grant(t, s, bank, login)
		if a := send(t, s, bank, revoke(s, bank, c, "token", issued.access, "token_type_hint", "access_token")); a.status != 200 {
			t.Fatalf("%s: revocation %d %v", bank, a.status, a.body)
		}
		if s.AccessTokenValid(bank, issued.access) || !s.RefreshTokenValid(bank, issued.refresh) {
			t.Errorf("%s: want the access token revoked and its refresh token working", bank)
		}
	}
}

// TestRevocationAnswersAsRFC7009Says: §2.2 200 for unknown and already-invalid tokens,
// §2.2.1 the token endpoint's client errors and unsupported_token_type.
func TestRevocationAnswersAsRFC7009Says(t *testing.T) {
	s := start(t, sandbox.Options{})
	for _, bank := range []providers.Name{providers.Paymob, providers.Banfico} {
		c := s.Credentials(bank)
		login := map[providers.Name]raw{providers.Paymob: paymobLogin(c), providers.Banfico: banficoOfflineGrant(c)}[bank]
		spent := grant(t, s, bank, login)
		send(t, s, bank, revoke(s, bank, c, "token", spent.refresh))
		issued := grant(t, s, bank, login)
		wrongSecret := revoke(s, bank, c, "token", issued.refresh)
		wrongSecret.basic = c.ClientID + ":demo-wrong"
		inForm := revoke(s, bank, c, "token", issued.refresh, "client_id", c.ClientID, "client_secret", c.ClientSecret)
		inForm.basic = ""
		for _, tc := range []struct {
			name       string
			call       raw
			wantStatus int
			wantError  string
			wantValid  bool
		}{
			{"unknown token", revoke(s, bank, c, "token", "demo-unknown-token"), 200, "", true},
			{"already revoked refresh token", revoke(s, bank, c, "token", spent.refresh, "token_type_hint", "refresh_token"), 200, "", true},
			{"wrong client secret", wrongSecret, 401, "invalid_client", true},
			{"missing token", revoke(s, bank, c, "token_type_hint", "refresh_token"), 400, "invalid_request", true},
			{"unsupported hint", revoke(s, bank, c, "token", issued.refresh, "token_type_hint", "id_token"), 400, "unsupported_token_type", true},
			{"GET", raw{url: s.RevocationURL(bank), method: "GET"}, 405, "invalid_request", true},
			// DOT takes the client in the form as at its token endpoint; Keycloak, Basic only.
			{"client in the form", inForm, map[providers.Name]int{providers.Paymob: 200, providers.Banfico: 401}[bank],
				map[providers.Name]string{providers.Banfico: "invalid_client"}[bank], bank == providers.Banfico},
		} {
			t.Run(string(bank)+" "+tc.name, func(t *testing.T) {
				before := len(s.Revocations(bank))
				a := send(t, s, bank, tc.call)
				if a.status != tc.wantStatus || errorCode(a) != tc.wantError {
					t.Errorf("answer %d %v, want %d %q", a.status, a.body, tc.wantStatus, tc.wantError)
				}
				if got := len(s.Revocations(bank)); got != before+1 || lastRevocation(t, s, bank).Revoked != (tc.wantStatus == 200 && !tc.wantValid) {
					t.Errorf("recorded %d calls, last %+v", got-before, lastRevocation(t, s, bank))
				}
				if s.RefreshTokenValid(bank, issued.refresh) != tc.wantValid {
					t.Errorf("refresh token valid = %v, want %v", !tc.wantValid, tc.wantValid)
				}
			})
		}
	}
}

func TestRevocationLeavesAnotherClientsTokenAlone(t *testing.T) {
	s := start(t, sandbox.Options{})
	original := s.Credentials(providers.Paymob)
	issued := grant(t, s, providers.Paymob, paymobLogin(original))
	other := original
	other.ClientID, other.ClientSecret = "demo-paymob-other-client", "demo-paymob-other-secret"
	s.SetCredentials(providers.Paymob, other)
	for _, token := range []string{issued.refresh, issued.access} {
		if a := send(t, s, providers.Paymob, revoke(s, providers.Paymob, other, "token", token)); a.status != 200 {
			t.Errorf("revocation: %d %v, want 200 (RFC 7009 §2.2)", a.status, a.body)
		}
		if rv := lastRevocation(t, s, providers.Paymob); rv.Revoked {
			t.Errorf("recorded %+v, want not revoked", rv)
		}
	}
	if !s.RefreshTokenValid(providers.Paymob, issued.refresh) || !s.AccessTokenValid(providers.Paymob, issued.access) {
		t.Error("another client revoked this client's tokens")
	}
}

func TestRevocationFailsWhileTheBankIsDown(t *testing.T) {
	s := start(t, sandbox.Options{})
	c := s.Credentials(providers.Banfico)
	issued := grant(t, s, providers.Banfico, banficoOfflineGrant(c))
	for _, tc := range []struct {
		name       string
		set, clear func()
		wantStatus int
	}{
		{"unavailable", func() { s.SetUnavailable(providers.Banfico, true) }, func() { s.SetUnavailable(providers.Banfico, false) }, 503},
		{"server error", func() { s.SetFault(providers.Banfico, sandbox.FaultServerError) }, func() { s.SetFault(providers.Banfico, sandbox.NoFault) }, 500},
		{"gateway page", func() { s.SetFault(providers.Banfico, sandbox.FaultGatewayHTMLPage) }, func() { s.SetFault(providers.Banfico, sandbox.NoFault) }, 502},
		{"rate limited", func() { s.SetRateLimited(providers.Banfico, 2*time.Second) }, func() { s.SetRateLimited(providers.Banfico, 0) }, 429},
	} {
		tc.set()
		a := send(t, s, providers.Banfico, revoke(s, providers.Banfico, c, "token", issued.refresh))
		tc.clear()
		if a.status != tc.wantStatus || !s.RefreshTokenValid(providers.Banfico, issued.refresh) {
			t.Errorf("%s: %d, want %d and nothing revoked", tc.name, a.status, tc.wantStatus)
		}
	}
	// A fault tied to a grant is not the revocation endpoint's.
	s.SetFault(providers.Banfico, sandbox.FaultInvalidGrantOnPrimary)
	if a := send(t, s, providers.Banfico, revoke(s, providers.Banfico, c, "token", issued.refresh)); a.status != 200 || s.RefreshTokenValid(providers.Banfico, issued.refresh) {
		t.Errorf("with a grant fault set: %d, want 200 and the token revoked", a.status)
	}
}

func TestRevocationsHoldNoToken(t *testing.T) {
	s := start(t, sandbox.Options{})
	c := s.Credentials(providers.Paymob)
	issued := grant(t, s, providers.Paymob, paymobLogin(c))
	send(t, s, providers.Paymob, revoke(s, providers.Paymob, c, "token", issued.refresh))
	send(t, s, providers.Paymob, revoke(s, providers.Paymob, c, "token", issued.access, "token_type_hint", "bogus"))
	recorded := fmt.Sprintf("%+v", s.Revocations(providers.Paymob))
	if strings.Contains(recorded, issued.refresh) || strings.Contains(recorded, issued.access) || strings.Contains(recorded, c.ClientSecret) {
		t.Errorf("Revocations hold a token or secret: %s", recorded)
	}
}

func TestKeycloakRevocationCanEndEverySessionOfTheClient(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.SetRevocationEndsEverySession(providers.Banfico, true)
	c := s.Credentials(providers.Banfico)
	first, second := grant(t, s, providers.Banfico, banficoOfflineGrant(c)), grant(t, s, providers.Banfico, banficoOfflineGrant(c))
	if got := s.LiveGrants(providers.Banfico, c.ClientID); got != 2 {
		t.Fatalf("LiveGrants = %d before, want 2", got)
	}
	send(t, s, providers.Banfico, revoke(s, providers.Banfico, c, "token", first.refresh))
	if s.RefreshTokenValid(providers.Banfico, second.refresh) || s.AccessTokenValid(providers.Banfico, second.access) {
		t.Error("the other session of the same service account survived")
	}
	if got := s.LiveGrants(providers.Banfico, c.ClientID); got != 0 {
		t.Errorf("LiveGrants = %d after, want 0", got)
	}
}
