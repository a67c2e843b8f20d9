package providers

import (
	"strings"
	"testing"
)

// A bank may echo a secret it was sent in any encoding its stack writes: each must be masked.
func TestMaskerHidesEveryEncodingABankMayEcho(t *testing.T) {
	const secret = "fixture~pass*word/+=é"
	m := newMasker(Request{Credentials: Credentials{ClientID: "client", ClientSecret: secret}})
	for name, echoed := range map[string]string{
		"as sent":                      secret,
		"Go query escaping":            "fixture~pass%2Aword%2F%2B%3D%C3%A9",
		"Java's URLEncoder (Keycloak)": "fixture%7Epass*word%2F%2B%3D%C3%A9",
		"Java's, lower-case hex":       "fixture%7epass*word%2f%2b%3d%c3%a9",
		"Go path escaping, lower hex":  "fixture~pass%2aword%2f+=%c3%a9",
	} {
		t.Run(name, func(t *testing.T) {
			got := m.cleanDescription("the bank says: client_secret=" + echoed + " is wrong")
			if strings.Contains(got, echoed) || !strings.Contains(got, masked) {
				t.Fatalf("%q was not masked: %q", echoed, got)
			}
		})
	}
}
