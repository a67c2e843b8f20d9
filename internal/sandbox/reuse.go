package sandbox

import (
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Refresh-token reuse: every bank counts spent refresh tokens sent again, so a test can
// assert that a client never replays one; a bank with Keycloak's "Revoke Refresh Token"
// on also revokes the whole grant chain of a reused token (RFC 9700 §4.14.2), as a bank
// that suspects a stolen token does.

// noteReuse counts a spent refresh token sent again; under reuse detection it revokes
// every refresh and access token of its chain.
func (b *bank) noteReuse(reused *refreshToken) {
	b.reusedRefreshTokens++
	if b.revokeRefreshToken {
		b.revokeChain(reused.chain)
	}
}

// rotateRefreshToken spends old and issues its successor in the same chain.
func (b *bank) rotateRefreshToken(old *refreshToken) string {
	old.used = true
	next := newOpaqueToken(b.slug + "-rt")
	successor := *old
	successor.used = false
	b.refreshTokens[next] = &successor
	return next
}

func (s *Server) callAnswered(b *bank) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.callsInFlight--
}

// withBank runs fn on bank's state under the server's lock.
func (s *Server) withBank(name providers.Name, fn func(b *bank)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.bank(name))
}

// SetRevokeRefreshToken turns on Keycloak's "Revoke Refresh Token" at bank (Banfico):
// every refresh rotates the refresh token, and a rotated-away one sent again revokes
// every token of its grant chain. Off (the default), Banfico reuses its offline token.
func (s *Server) SetRevokeRefreshToken(name providers.Name, on bool) {
	s.withBank(name, func(b *bank) { b.revokeRefreshToken = on })
}

// ReusedRefreshTokens is how many times bank received a spent refresh token again.
func (s *Server) ReusedRefreshTokens(name providers.Name) (n int) {
	s.withBank(name, func(b *bank) { n = b.reusedRefreshTokens })
	return n
}

// SetAnswerDelay makes bank hold each answer for d after deciding it.
func (s *Server) SetAnswerDelay(name providers.Name, d time.Duration) {
	s.withBank(name, func(b *bank) { b.answerDelay = d })
}

// CallsInFlight is the number of bank's calls (token and revocation) received and not
// yet answered.
func (s *Server) CallsInFlight(name providers.Name) (n int) {
	s.withBank(name, func(b *bank) { n = b.callsInFlight })
	return n
}
