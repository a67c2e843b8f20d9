package sandbox_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

func TestEveryBankRecordsTheInteractionIDOfEachCall(t *testing.T) {
	s := start(t, sandbox.Options{})
	client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()})
	for _, bank := range sandbox.AllBanks() {
		var sent []string
		for range 2 {
			req := s.Request(bank)
			req.InteractionID = providers.NewInteractionID()
			// A user header of that name is replaced, not sent beside the call's own.
			req.Headers = append(req.Headers, providers.Header{Name: "X-Fapi-Interaction-Id", Value: "set-by-the-user"})
			if _, err := client.Fetch(context.Background(), req); err != nil {
				t.Fatalf("%s: %v", bank, err)
			}
			sent = append(sent, req.InteractionID)
		}
		calls := s.Calls(bank)
		var got []string
		for _, c := range calls[len(calls)-2:] {
			if _, err := uuid.Parse(c.InteractionID); err != nil {
				t.Errorf("%s recorded x-fapi-interaction-id %q: not one UUID (%v)", bank, c.InteractionID, err)
			}
			got = append(got, c.InteractionID)
		}
		if !slices.Equal(got, sent) || got[0] == got[1] {
			t.Errorf("%s recorded %q, want the two distinct ids sent %q", bank, got, sent)
		}
	}
}

func TestAFAPIServerEchoesTheInteractionIDAndTheBanksDoNot(t *testing.T) {
	s := start(t, sandbox.Options{})
	id := providers.NewInteractionID()
	c := s.Credentials(sandbox.MTLSServer)
	a := send(t, s, sandbox.MTLSServer, raw{contentType: form, clientCert: true, header: map[string]string{"x-fapi-interaction-id": id},
		body: formBody("grant_type", "client_credentials", "client_id", c.ClientID)})
	if a.status != 200 || a.header.Get("x-fapi-interaction-id") != id {
		t.Errorf("MTLSServer answered %d with x-fapi-interaction-id %q, want 200 and %q", a.status, a.header.Get("x-fapi-interaction-id"), id)
	}
	a = send(t, s, sandbox.MTLSServer, raw{contentType: form, clientCert: true, body: formBody("grant_type", "client_credentials", "client_id", c.ClientID)})
	if _, err := uuid.Parse(a.header.Get("x-fapi-interaction-id")); err != nil {
		t.Errorf("MTLSServer answered a call without an id with %q, want one of its own", a.header.Get("x-fapi-interaction-id"))
	}
	p := s.Credentials(providers.Paymob)
	a = send(t, s, providers.Paymob, raw{contentType: form, basic: p.ClientID + ":" + p.ClientSecret, basicEncoded: true,
		header: map[string]string{"x-fapi-interaction-id": id}, body: formBody("grant_type", "password", "username", p.Username, "password", p.Password)})
	if a.status != 200 || a.header.Get("x-fapi-interaction-id") != "" {
		t.Errorf("Paymob answered %d with x-fapi-interaction-id %q; its document names no such header", a.status, a.header.Get("x-fapi-interaction-id"))
	}
}

func TestAnOAuth2ServerTakesRepeatedResourcesAndAnAudience(t *testing.T) {
	s := start(t, sandbox.Options{})
	client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()})
	req := s.Request(sandbox.MTLSServer)
	req.Parameters = []providers.Parameter{
		{Name: "resource", Value: "https://api.bank.example/accounts"},
		{Name: "resource", Value: "https://api.bank.example/payments"},
		{Name: "audience", Value: "https://bank.example"},
	}
	if _, err := client.Fetch(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	calls := s.Calls(sandbox.MTLSServer)
	last := calls[len(calls)-1]
	if !slices.Equal(last.Resource, []string{"https://api.bank.example/accounts", "https://api.bank.example/payments"}) ||
		!slices.Equal(last.Audience, []string{"https://bank.example"}) || !last.Accepted() {
		t.Errorf("recorded resource %q audience %q status %d", last.Resource, last.Audience, last.Status)
	}
	// Any other parameter sent twice is still refused (RFC 6749 §3.2).
	c := s.Credentials(sandbox.MTLSServer)
	a := send(t, s, sandbox.MTLSServer, raw{contentType: form, clientCert: true,
		body: formBody("grant_type", "client_credentials", "client_id", c.ClientID, "audience", "a", "audience", "b")})
	if a.status != 400 {
		t.Errorf("audience twice: %d, want 400", a.status)
	}
}

func TestARevocationRecordsItsInteractionID(t *testing.T) {
	s := start(t, sandbox.Options{})
	client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()})
	req := s.Request(providers.Paymob)
	tok, err := client.Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	req.InteractionID = providers.NewInteractionID()
	if err := client.Revoke(context.Background(), req, s.RevocationURL(providers.Paymob), tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if rv := lastRevocation(t, s, providers.Paymob); rv.InteractionID != req.InteractionID || !rv.Revoked {
		t.Errorf("recorded %+v, want interaction id %s", rv, req.InteractionID)
	}
}
