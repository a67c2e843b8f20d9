package sandbox_test

import (
	"net/url"
	"testing"

	"github.com/google/uuid"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

func mbanqLogin(c sandbox.BankCredentials) raw {
	return raw{contentType: form, header: mbanqHeaders(c),
		body: formBody("grant_type", "password", "username", c.Username, "password", c.Password, "client_id", c.ClientID, "client_secret", c.ClientSecret)}
}

func mbanqRefresh(c sandbox.BankCredentials, refreshToken string) raw {
	return raw{contentType: form, header: mbanqHeaders(c),
		body: formBody("grant_type", "refresh_token", "refresh_token", refreshToken, "client_id", c.ClientID, "client_secret", c.ClientSecret)}
}

func rakbankClientCredentials(c sandbox.BankCredentials) raw {
	return raw{contentType: form, basic: c.ClientID + ":" + c.ClientSecret, basicEncoded: true,
		body: formBody("grant_type", "client_credentials", "scope", "accounts")}
}

func TestLiveGrantsCountsChainsThatCanStillRefresh(t *testing.T) {
	s := start(t, sandbox.Options{})
	paymob := s.Credentials(providers.Paymob)
	live := func() int { return s.LiveGrants(providers.Paymob, paymob.ClientID) }

	first := grant(t, s, providers.Paymob, paymobLogin(paymob))
	rotated := grant(t, s, providers.Paymob, paymobRefresh(paymob, first.refresh))
	grant(t, s, providers.Paymob, paymobRefresh(paymob, rotated.refresh))
	if got := live(); got != 1 {
		t.Errorf("after a login and two rotations: %d live grants, want 1", got)
	}
	second := grant(t, s, providers.Paymob, paymobLogin(paymob))
	if got := live(); got != 2 {
		t.Errorf("after a second login: %d, want 2", got)
	}
	send(t, s, providers.Paymob, revoke(s, providers.Paymob, paymob, "token", second.refresh))
	if got := live(); got != 1 {
		t.Errorf("after revoking the second: %d, want 1", got)
	}
	if got := s.LiveGrants(providers.Paymob, "demo-someone-else"); got != 0 {
		t.Errorf("another client: %d, want 0", got)
	}

	// Reused refresh tokens: each is its own chain, and refreshing opens none.
	rak := s.Credentials(providers.RAKBank)
	for range 2 {
		grant(t, s, providers.RAKBank, rakbankClientCredentials(rak))
	}
	if got := s.LiveGrants(providers.RAKBank, rak.ClientID); got != 2 {
		t.Errorf("RAKBANK after two client_credentials grants: %d, want 2", got)
	}
	banfico := s.Credentials(providers.Banfico)
	grant(t, s, providers.Banfico, raw{contentType: form, basic: banfico.ClientID + ":" + banfico.ClientSecret, basicEncoded: true,
		body: formBody("grant_type", "client_credentials", "scope", "profile email")})
	if got := s.LiveGrants(providers.Banfico, banfico.ClientID); got != 0 {
		t.Errorf("Banfico without offline_access: %d, want 0", got)
	}
}

// TestPaymobRotationStaysInItsGrantChain: with reuse protection on (DOT's
// REFRESH_TOKEN_REUSE_PROTECTION, Keycloak's Revoke Refresh Token), replaying a spent
// refresh token revokes its whole chain, the rotated successors included.
func TestPaymobRotationStaysInItsGrantChain(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.SetRevokeRefreshToken(providers.Paymob, true)
	c := s.Credentials(providers.Paymob)
	first := grant(t, s, providers.Paymob, paymobLogin(c))
	second := grant(t, s, providers.Paymob, paymobRefresh(c, first.refresh))
	third := grant(t, s, providers.Paymob, paymobRefresh(c, second.refresh))
	if s.AccessTokenValid(providers.Paymob, second.access) {
		t.Error("the refresh left the access token it replaces valid")
	}
	if !s.AccessTokenValid(providers.Paymob, third.access) {
		t.Fatal("the newest access token is not valid")
	}
	send(t, s, providers.Paymob, paymobRefresh(c, first.refresh))
	if s.RefreshTokenValid(providers.Paymob, third.refresh) || s.AccessTokenValid(providers.Paymob, third.access) {
		t.Error("replaying the chain's first refresh token left its newest tokens valid: rotation started a new chain")
	}
}

func TestMbanqRefreshRevokesTheAccessTokensIssuedWithItsRefreshToken(t *testing.T) {
	s := start(t, sandbox.Options{})
	c := s.Credentials(providers.Mbanq)
	login := grant(t, s, providers.Mbanq, mbanqLogin(c))
	other := grant(t, s, providers.Mbanq, mbanqLogin(c))
	refreshed := grant(t, s, providers.Mbanq, mbanqRefresh(c, login.refresh))
	if refreshed.refresh != login.refresh {
		t.Error("MBANQ rotated its refresh token; it reuses it")
	}
	if s.AccessTokenValid(providers.Mbanq, login.access) {
		t.Error("the access token issued before the refresh is still valid")
	}
	if !s.AccessTokenValid(providers.Mbanq, refreshed.access) || !s.AccessTokenValid(providers.Mbanq, other.access) {
		t.Error("the new access token, or another login's, is not valid")
	}
	again := grant(t, s, providers.Mbanq, mbanqRefresh(c, login.refresh))
	if s.AccessTokenValid(providers.Mbanq, refreshed.access) || !s.AccessTokenValid(providers.Mbanq, again.access) {
		t.Error("a second refresh did not revoke the first refresh's access token")
	}
	if got := s.LiveGrants(providers.Mbanq, c.ClientID); got != 2 {
		t.Errorf("LiveGrants = %d, want 2 (two logins; a reused refresh token opens none)", got)
	}
}

func TestMbanqTakesTheTenantAsAQueryParameter(t *testing.T) {
	s := start(t, sandbox.Options{})
	c := s.Credentials(providers.Mbanq)
	withQuery, err := url.Parse(s.TokenURLWithTenantQuery(providers.Mbanq))
	if err != nil || withQuery.Query().Get("tenantIdentifier") != "demo-tenant" || withQuery.Path != "/mbanq/oauth/token" {
		t.Fatalf("TokenURLWithTenantQuery = %q", withQuery)
	}
	withoutTenantHeader := func(tenantURL string) raw {
		call := mbanqLogin(c)
		delete(call.header, "tenantId")
		call.url = tenantURL
		return call
	}
	otherTenant := s.TokenURL(providers.Mbanq) + "?tenantIdentifier=demo-other-tenant"
	noDevice := withoutTenantHeader(withQuery.String())
	delete(noDevice.header, "X-Device-Id")
	both := mbanqLogin(c)
	both.url = withQuery.String()
	for _, tc := range []struct {
		name       string
		call       raw
		wantStatus int
	}{
		{"query parameter instead of the header", withoutTenantHeader(withQuery.String()), 200},
		{"query parameter and header that agree", both, 200},
		{"another tenant in the query", withoutTenantHeader(otherTenant), 400},
		{"neither", withoutTenantHeader(""), 400},
		{"query parameter without the device id header", noDevice, 400},
	} {
		if a := send(t, s, providers.Mbanq, tc.call); a.status != tc.wantStatus {
			t.Errorf("%s: %d %v, want %d", tc.name, a.status, a.body, tc.wantStatus)
		}
	}
}

func TestRAKBankPartnerMayReturnARefreshTokenItNeverAccepts(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.SetPartnerReturnsRefreshToken(true)
	c := s.Credentials(providers.RAKBankPartner)
	call := func(body string) answer {
		return send(t, s, providers.RAKBankPartner, raw{contentType: "application/json", header: partnerHeaders(c, uuid.NewString()), body: body, clientCert: true})
	}
	a := call(`{"grant_type":"client_credentials","scope":"accounts","oauth_metadata":{"account_id":"0188000049916"}}`)
	refresh, _ := a.body["refresh_token"].(string)
	if a.status != 200 || refresh == "" {
		t.Fatalf("answer %d %v, want 200 with a refresh_token", a.status, a.body)
	}
	if r := call(`{"grant_type":"refresh_token","scope":"accounts"}`); r.status != 400 || errorCode(r) != "REQ-003" {
		t.Errorf("refresh_token grant: %d %v, want 400 REQ-003", r.status, r.body)
	}
	if s.RefreshTokenValid(providers.RAKBankPartner, refresh) || s.LiveGrants(providers.RAKBankPartner, c.ClientID) != 0 {
		t.Error("the partner's refresh token counts as usable")
	}
	s.SetPartnerReturnsRefreshToken(false)
	if a := call(`{"grant_type":"client_credentials","scope":"accounts","oauth_metadata":{"account_id":"0188000049916"}}`); a.body["refresh_token"] != nil {
		t.Error("a refresh_token after the setting was turned off")
	}
}
