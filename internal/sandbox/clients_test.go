package sandbox_test

import (
	"testing"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// A second client at one bank gets tokens of its own, and the bank tells its calls and
// tokens apart from the fixture client's: what the demo's shared connection is judged by.
func TestAnotherClientIsCountedApart(t *testing.T) {
	s := start(t, sandbox.Options{})
	const id, secret = "demo-rakbank-platform-client", "demo-rakbank-platform-client-secret-1"
	fixture := s.Credentials(providers.RAKBank)
	body := formBody("grant_type", "client_credentials", "scope", "payments")
	call := func(id, secret string) int {
		return send(t, s, providers.RAKBank, raw{contentType: form, basic: id + ":" + secret, basicEncoded: true, body: body}).status
	}

	if got := call(id, secret); got != 401 {
		t.Fatalf("a client the bank has not registered: %d, want 401", got)
	}
	s.AddClient(providers.RAKBank, id, secret)
	for _, c := range []struct {
		id, secret string
		want       int
	}{{id, secret, 200}, {id, secret, 200}, {id, "wrong", 401}, {fixture.ClientID, fixture.ClientSecret, 200}} {
		if got := call(c.id, c.secret); got != c.want {
			t.Errorf("client %s: %d, want %d", c.id, got, c.want)
		}
	}

	if got := s.IssuedTo(providers.RAKBank, id); got != 2 {
		t.Errorf("IssuedTo(added client) = %d, want 2", got)
	}
	if got := s.IssuedTo(providers.RAKBank, fixture.ClientID); got != 1 {
		t.Errorf("IssuedTo(fixture client) = %d, want 1", got)
	}
	calls := s.CallsFrom(providers.RAKBank, id)
	if len(calls) != 4 || !calls[1].Accepted() || !calls[2].Accepted() || calls[0].Accepted() || calls[3].Accepted() {
		t.Errorf("CallsFrom(added client) = %+v, want refused, accepted, accepted, refused", calls)
	}
	if got := len(s.CallsFrom(providers.RAKBank, fixture.ClientID)); got != 1 {
		t.Errorf("CallsFrom(fixture client) = %d calls, want 1", got)
	}
}
