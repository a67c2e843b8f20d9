package sandbox_test

import (
	"testing"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// banficoOfflineGrant is a Banfico client_credentials call that asks for an offline token.
func banficoOfflineGrant(c sandbox.BankCredentials) raw {
	return raw{contentType: form, basic: c.ClientID + ":" + c.ClientSecret, basicEncoded: true,
		body: formBody("grant_type", "client_credentials", "scope", "profile offline_access")}
}

func banficoRefresh(c sandbox.BankCredentials, refreshToken string) raw {
	return raw{contentType: form, basic: c.ClientID + ":" + c.ClientSecret, basicEncoded: true,
		body: formBody("grant_type", "refresh_token", "refresh_token", refreshToken)}
}

func TestKeycloakReuseDetectionRevokesTheWholeGrant(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.SetRevokeRefreshToken(providers.Banfico, true)
	c := s.Credentials(providers.Banfico)

	first := send(t, s, providers.Banfico, banficoOfflineGrant(c))
	firstRT := first.body["refresh_token"].(string)
	second := send(t, s, providers.Banfico, banficoRefresh(c, firstRT))
	if second.status != 200 {
		t.Fatalf("refresh: %d %v", second.status, second.body)
	}
	secondRT, secondAT := second.body["refresh_token"].(string), second.body["access_token"].(string)
	if secondRT == firstRT || s.RefreshTokenValid(providers.Banfico, firstRT) {
		t.Fatal("the refresh token was not rotated")
	}

	if replay := send(t, s, providers.Banfico, banficoRefresh(c, firstRT)); replay.status != 400 || errorCode(replay) != "invalid_grant" {
		t.Errorf("replayed refresh token: %d %v, want 400 invalid_grant", replay.status, replay.body)
	}
	if got := s.ReusedRefreshTokens(providers.Banfico); got != 1 {
		t.Errorf("ReusedRefreshTokens = %d, want 1", got)
	}
	if s.RefreshTokenValid(providers.Banfico, secondRT) || s.AccessTokenValid(providers.Banfico, secondAT) {
		t.Error("the reuse left the grant's newest tokens valid")
	}
	other := send(t, s, providers.Banfico, banficoOfflineGrant(c))
	if !s.AccessTokenValid(providers.Banfico, other.body["access_token"].(string)) {
		t.Error("a new grant is not usable after another grant was revoked")
	}
}

func TestBanficoReusesItsOfflineTokenWithoutRevokeRefreshToken(t *testing.T) {
	s := start(t, sandbox.Options{})
	c := s.Credentials(providers.Banfico)
	rt := send(t, s, providers.Banfico, banficoOfflineGrant(c)).body["refresh_token"].(string)
	for range 2 {
		if a := send(t, s, providers.Banfico, banficoRefresh(c, rt)); a.status != 200 || a.body["refresh_token"] != rt {
			t.Fatalf("refresh: %d, rotated %v", a.status, a.body["refresh_token"] != rt)
		}
	}
	if got := s.ReusedRefreshTokens(providers.Banfico); got != 0 {
		t.Errorf("ReusedRefreshTokens = %d, want 0", got)
	}
}

func TestPaymobCountsASpentRefreshTokenSentAgain(t *testing.T) {
	s := start(t, sandbox.Options{})
	c := s.Credentials(providers.Paymob)
	login := raw{contentType: form, basic: c.ClientID + ":" + c.ClientSecret, basicEncoded: true,
		body: formBody("grant_type", "password", "username", c.Username, "password", c.Password)}
	rt := send(t, s, providers.Paymob, login).body["refresh_token"].(string)
	refresh := raw{contentType: form, basic: c.ClientID + ":" + c.ClientSecret, basicEncoded: true,
		body: formBody("grant_type", "refresh_token", "refresh_token", rt)}
	if a := send(t, s, providers.Paymob, refresh); a.status != 200 {
		t.Fatalf("refresh: %d", a.status)
	}
	if a := send(t, s, providers.Paymob, refresh); a.status != 400 {
		t.Errorf("spent refresh token: %d, want 400", a.status)
	}
	if got := s.ReusedRefreshTokens(providers.Paymob); got != 1 {
		t.Errorf("ReusedRefreshTokens = %d, want 1", got)
	}
}

func TestAnswerDelayKeepsTheCallInFlight(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.SetAnswerDelay(providers.Banfico, 300*time.Millisecond)
	c := s.Credentials(providers.Banfico)
	done := make(chan answer)
	go func() { done <- send(t, s, providers.Banfico, banficoOfflineGrant(c)) }()
	deadline := time.Now().Add(time.Second)
	for s.CallsInFlight(providers.Banfico) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.CallsInFlight(providers.Banfico) != 1 {
		t.Fatal("no call in flight while its answer is held back")
	}
	if a := <-done; a.status != 200 || s.CallsInFlight(providers.Banfico) != 0 {
		t.Errorf("after the delay: %d, %d in flight", a.status, s.CallsInFlight(providers.Banfico))
	}
}
