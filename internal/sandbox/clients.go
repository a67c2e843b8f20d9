package sandbox

import "github.com/banktoken/bank-token-operator/internal/providers"

// A bank registers many clients: a platform team's client shared through a connection
// beside a team's own. The fixture client is BankCredentials; further ones authenticate with
// their own id and secret and are granted what the fixture client is. Every call records
// the client it named (see callerOf), so that a caller can tell whose calls the bank saw.

// AddClient registers another client at a form-encoded bank (RAKBANK, Banfico, MBANQ,
// Paymob): it authenticates with clientID and clientSecret and is granted the fixture
// client's scopes, resource owner and required headers. Its values are fixtures too.
func (s *Server) AddClient(name providers.Name, clientID, clientSecret string) {
	s.withBank(name, func(b *bank) { b.otherClients[clientID] = clientSecret })
}

// CallsFrom is the token calls that presented clientID at bank, oldest first.
func (s *Server) CallsFrom(name providers.Name, clientID string) []Call {
	var out []Call
	s.withBank(name, func(b *bank) {
		for _, c := range b.calls {
			if c.ClientID == clientID {
				out = append(out, c)
			}
		}
	})
	return out
}

// IssuedTo is the number of access tokens bank issued to clientID, by any grant.
func (s *Server) IssuedTo(name providers.Name, clientID string) int {
	n := 0
	s.withBank(name, func(b *bank) {
		for _, at := range b.accessTokens {
			if at.clientID == clientID {
				n++
			}
		}
	})
	return n
}

// knowsClient reports whether a call's client credentials are those of a client the bank
// registered: the fixture client's or one AddClient added.
func (b *bank) knowsClient(c clientAuth) bool {
	if c.matches(b.creds) {
		return true
	}
	secret, ok := b.otherClients[c.id]
	return ok && c.id != "" && c.secret == secret
}
