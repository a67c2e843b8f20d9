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

// A *Key override can point the client id or username at any value of the Secret (an app's
// database password): a bank echoing it back must not carry it into status or events. Read
// under the usual keys they stay readable (TestFailureClassification's messages name them).
func TestMaskerHidesAClientIDAndUsernameReadFromASecret(t *testing.T) {
	const clientID, username = "db-password-as-client-id", "db-password-as-username"
	m := newMasker(Request{Credentials: Credentials{ClientID: clientID, Username: username, Password: "fixture-password", MaskIdentifiers: true}})
	for _, echoed := range []string{clientID, username} {
		got := m.cleanDescription("unknown client or user " + echoed)
		if strings.Contains(got, echoed) || !strings.Contains(got, masked) {
			t.Fatalf("%q was not masked: %q", echoed, got)
		}
	}
}

// A client id of a few characters stays readable: masking every occurrence of "ab" would
// hide the bank's whole message.
func TestMaskerLeavesAVeryShortClientIDReadable(t *testing.T) {
	m := newMasker(Request{Credentials: Credentials{ClientID: "ab", MaskIdentifiers: true}})
	if got := m.cleanDescription("client ab is unknown"); got != "client ab is unknown" {
		t.Fatalf("a two-character client id was masked: %q", got)
	}
}
