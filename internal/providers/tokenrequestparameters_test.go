package providers

import (
	"context"
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func withParameters(req Request) Request {
	req.Parameters = []Parameter{
		{Name: "resource", Value: "https://api.bank.example/accounts"},
		{Name: "audience", Value: "https://bank.example"},
		{Name: "resource", Value: "https://api.bank.example/payments"},
	}
	return req
}

func formOf(t *testing.T, c *call) url.Values {
	t.Helper()
	r, perr := c.newHTTPRequest(context.Background(), "msg-1")
	if perr != nil {
		t.Fatal(perr)
	}
	body, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatal(err)
	}
	return form
}

func TestTokenRequestParametersGoInTheBodyOfEveryGrant(t *testing.T) {
	grants := map[string]func(*Request){
		"client_credentials": func(r *Request) { r.GrantType = GrantClientCredentials },
		"password":           func(r *Request) { r.GrantType = GrantPassword },
		"refresh_token":      func(r *Request) { r.GrantType, r.RefreshToken = GrantClientCredentials, "request-refresh-token" },
	}
	for name, grant := range grants {
		t.Run(name, func(t *testing.T) {
			req := withParameters(validRequest(OAuth2))
			grant(&req)
			c, perr := plan(req)
			if perr != nil {
				t.Fatal(perr)
			}
			form := formOf(t, c)
			want := []string{"https://api.bank.example/accounts", "https://api.bank.example/payments"}
			if got := form["resource"]; !slices.Equal(got, want) {
				t.Errorf("resource = %q, want %q (each target once, in order)", got, want)
			}
			if got := form["audience"]; !slices.Equal(got, []string{"https://bank.example"}) {
				t.Errorf("audience = %q", got)
			}
			if form.Get("grant_type") != name {
				t.Errorf("grant_type = %q, want %q", form.Get("grant_type"), name)
			}
		})
	}
}

func TestTokenRequestParametersAreNotSentToTheRevocationEndpoint(t *testing.T) {
	req := withParameters(validRequest(OAuth2))
	req.GrantType, req.RefreshToken = GrantClientCredentials, "request-refresh-token"
	c, perr := plan(req)
	if perr != nil {
		t.Fatal(perr)
	}
	c.revoking = req.RefreshToken
	form := formOf(t, c)
	if form.Has("resource") || form.Has("audience") {
		t.Errorf("revocation form %v carries the grant's parameters", form)
	}
}

func TestPlanRefusesTokenRequestParametersItCannotSend(t *testing.T) {
	cases := map[string]func(*Request){
		"a provider whose body is documented field by field": func(r *Request) {
			*r = withParameters(validRequest(Paymob))
		},
		"a name the operator sets":                  func(r *Request) { r.Parameters = []Parameter{{Name: "client_id", Value: "other"}} },
		"a name the operator sets, in another case": func(r *Request) { r.Parameters = []Parameter{{Name: "Grant_Type", Value: "password"}} },
		"a name outside RFC 6749 §8.2":              func(r *Request) { r.Parameters = []Parameter{{Name: "a b", Value: "c"}} },
		"an empty name":                             func(r *Request) { r.Parameters = []Parameter{{Name: "", Value: "c"}} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			req := validRequest(OAuth2)
			req.GrantType = GrantClientCredentials
			mutate(&req)
			err := Check(req)
			if e, ok := err.(*Error); !ok || e.Class != ClassConfiguration || e.Reason != ReasonInvalidProviderRequest {
				t.Fatalf("error = %v, want a configuration error", err)
			}
		})
	}
}

// Every name any provider's body sets, in a token call or a revocation, with any grant and
// client authentication, must be reserved: else a spec could send it twice.
func TestEveryNameAProviderBodySetsIsReserved(t *testing.T) {
	_, keyPEM := testKey(t, "EC")
	for _, name := range Names() {
		preset, _ := PresetFor(name)
		for _, grant := range preset.Grants {
			for _, auth := range preset.ClientAuthentications {
				for _, refresh := range []bool{false, true} {
					for _, revoking := range []bool{false, true} {
						req := validRequest(name)
						req.GrantType, req.ClientAuthentication = grant, auth
						req.Credentials.ClientSecret = "request-secret"
						switch {
						case auth == ClientAuthPrivateKeyJWT:
							req.Credentials.AssertionKey = AssertionKey{PrivateKey: keyPEM}
						case auth.IsCertificateBased():
							req.TLS.ClientCertificate = []byte("presented in the handshake")
						}
						if refresh && preset.SupportsRefresh {
							req.RefreshToken = "request-refresh-token"
						}
						c, perr := plan(req)
						if perr != nil {
							t.Fatalf("%s %s %s: %v", name, grant, auth, perr)
						}
						if revoking {
							c.revoking = "request-refresh-token"
						}
						for _, field := range bodyFieldNames(t, c) {
							if !slices.Contains(ReservedTokenRequestParameters(), field) {
								t.Errorf("%s (%s, %s, refresh %v, revoking %v) sets %q, which ReservedTokenRequestParameters lacks",
									name, grant, auth, refresh, revoking, field)
							}
						}
					}
				}
			}
		}
	}
}

// bodyFieldNames are the top-level names of the call's body, form or JSON.
func bodyFieldNames(t *testing.T, c *call) []string {
	t.Helper()
	body, _, perr := c.body()
	if perr != nil {
		t.Fatal(perr)
	}
	var names []string
	if c.preset.Body == BodyJSON {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			t.Fatal(err)
		}
		for k := range fields {
			names = append(names, k)
		}
		return names
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Fatal(err)
	}
	for k := range form {
		names = append(names, k)
	}
	return names
}

func TestOnlyTheGenericProviderSendsTokenRequestParameters(t *testing.T) {
	for _, name := range Names() {
		p, _ := PresetFor(name)
		if p.AcceptsTokenRequestParameters != (name == OAuth2) {
			t.Errorf("%s: AcceptsTokenRequestParameters = %v", name, p.AcceptsTokenRequestParameters)
		}
		if p.FAPI {
			t.Errorf("%s is marked a FAPI server: none of the five banks' documents says so, and OAuth2 opts in per spec", name)
		}
	}
	if strings.Join(ReservedTokenRequestParameters(), ",") == "" {
		t.Fatal("no reserved names")
	}
}
