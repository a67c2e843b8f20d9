package providers

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestTheInteractionIDTravelsOnceInTheStandardsSpelling(t *testing.T) {
	req := validRequest(OAuth2)
	req.GrantType = GrantClientCredentials
	req.InteractionID = NewInteractionID()
	// A user header of the same name in another spelling is replaced, not sent beside it.
	req.Headers = []Header{{Name: "X-FAPI-Interaction-ID", Value: "fixed-by-the-user"}, {Name: "X-Other", Value: "kept"}}
	c, perr := plan(req)
	if perr != nil {
		t.Fatal(perr)
	}
	r, perr := c.newHTTPRequest(context.Background(), "msg-1")
	if perr != nil {
		t.Fatal(perr)
	}
	if got := r.Header[HeaderFAPIInteractionID]; len(got) != 1 || got[0] != req.InteractionID {
		t.Errorf("x-fapi-interaction-id = %q, want [%s]", got, req.InteractionID)
	}
	var sent int
	for name, values := range r.Header {
		if strings.EqualFold(name, HeaderFAPIInteractionID) {
			sent += len(values)
		}
	}
	if sent != 1 || r.Header.Get("X-Other") != "kept" {
		t.Errorf("%d x-fapi-interaction-id values sent, X-Other %q; want 1 and kept", sent, r.Header.Get("X-Other"))
	}
}

func TestWithoutAnInteractionIDAUserHeaderOfThatNameIsSentAsIs(t *testing.T) {
	req := validRequest(OAuth2)
	req.GrantType = GrantClientCredentials
	req.Headers = []Header{{Name: "x-fapi-interaction-id", Value: "set-by-the-user"}}
	c, perr := plan(req)
	if perr != nil {
		t.Fatal(perr)
	}
	r, _ := c.newHTTPRequest(context.Background(), "msg-1")
	if got := r.Header[HeaderFAPIInteractionID]; len(got) != 1 || got[0] != "set-by-the-user" {
		t.Errorf("x-fapi-interaction-id = %q, want the user's", got)
	}

	req.Headers = nil
	c, _ = plan(req)
	r, _ = c.newHTTPRequest(context.Background(), "msg-1")
	if got := r.Header.Values(HeaderFAPIInteractionID); len(got) != 0 {
		t.Errorf("x-fapi-interaction-id = %q without an id, want none", got)
	}
}

func TestNewInteractionIDIsAFreshRFC4122UUID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewInteractionID()
		u, err := uuid.Parse(id)
		if err != nil || u.Variant() != uuid.RFC4122 || u.Version() != 4 || len(id) != 36 {
			t.Fatalf("%q is not an RFC 4122 version 4 UUID in its 36-character form (%v)", id, err)
		}
		if seen[id] {
			t.Fatalf("%q made twice", id)
		}
		seen[id] = true
	}
}

func TestAnInteractionIDThatIsNotAHeaderValueIsRefused(t *testing.T) {
	req := validRequest(Paymob)
	req.InteractionID = "a\r\nInjected: 1"
	if err := Check(req); err == nil {
		t.Fatal("an interaction id with a newline was accepted")
	}
}
