package sandbox_test

import (
	"slices"
	"testing"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// Each call is logged with the client it named, however it named it, and a gateway can
// hold one client back while it serves another client of the same bank.
func TestCallsAreLoggedAndRateLimitedPerClient(t *testing.T) {
	s := start(t, sandbox.Options{})
	paymob := s.Credentials(providers.Paymob)
	other := paymob
	other.ClientID, other.ClientSecret = "demo-paymob-other-client", "demo-paymob-other-client-secret-1"
	s.AddClient(providers.Paymob, other.ClientID, other.ClientSecret)
	password := formBody("grant_type", "password", "username", paymob.Username, "password", paymob.Password)
	byBasic := raw{contentType: form, basic: paymob.ClientID + ":" + paymob.ClientSecret, basicEncoded: true, body: password}
	byForm := raw{contentType: form, body: password + "&" + formBody("client_id", other.ClientID, "client_secret", other.ClientSecret)}

	s.SetClientRateLimited(providers.Paymob, paymob.ClientID, 2500*time.Millisecond)
	if a := send(t, s, providers.Paymob, byBasic); a.status != 429 || a.header.Get("Retry-After") != "3" {
		t.Errorf("the limited client: %d Retry-After %q, want 429 and 3", a.status, a.header.Get("Retry-After"))
	}
	if a := send(t, s, providers.Paymob, byForm); a.status == 429 {
		t.Errorf("another client of the same bank was rate limited too")
	}
	s.SetClientRateLimited(providers.Paymob, paymob.ClientID, 0)
	if a := send(t, s, providers.Paymob, byBasic); a.status != 200 {
		t.Errorf("after the limit was lifted: %d, want 200", a.status)
	}

	statuses := func(calls []sandbox.Call) []int {
		var out []int
		for _, c := range calls {
			out = append(out, c.Status)
		}
		return out
	}
	if got := statuses(s.CallsFrom(providers.Paymob, paymob.ClientID)); !slices.Equal(got, []int{429, 200}) {
		t.Errorf("calls of the Basic client: %v, want [429 200]", got)
	}
	if got := s.CallsFrom(providers.Paymob, other.ClientID); len(got) != 1 || got[0].Status != 200 {
		t.Errorf("calls of the registered client: %+v, want one, served", got)
	}
	wrongSecret := raw{contentType: form, body: password + "&" + formBody("client_id", other.ClientID, "client_secret", paymob.ClientSecret)}
	if a := send(t, s, providers.Paymob, wrongSecret); a.status != 401 {
		t.Errorf("a registered client with another client's secret: %d, want 401", a.status)
	}
}
