package sandbox

import "github.com/banktoken/bank-token-operator/internal/providers"

// Grant chains: a primary grant that returns a refresh token starts a chain; a refresh that
// rotates the refresh token keeps it; where the refresh token is reused, that token is its
// own chain. A chain is what a bank keeps a session for (Keycloak's offline session, DOT's
// refresh token row).

// LiveGrants is the number of grant chains issued to clientID at bank that still hold a
// usable refresh token (not rotated away, not revoked): the sessions the bank keeps for it.
func (s *Server) LiveGrants(name providers.Name, clientID string) int {
	chains := map[string]bool{}
	s.withBank(name, func(b *bank) {
		for _, rt := range b.refreshTokens {
			if rt.clientID == clientID && rt.usable() {
				chains[rt.chain] = true
			}
		}
	})
	return len(chains)
}

// revokeChain revokes every refresh and access token of chain.
func (b *bank) revokeChain(chain string) {
	if chain == "" {
		return
	}
	for _, rt := range b.refreshTokens {
		if rt.chain == chain {
			rt.revoked = true
		}
	}
	for _, at := range b.accessTokens {
		if at.chain == chain {
			at.revoked = true
		}
	}
}

// revokeEverySessionOf revokes every chain of clientID's tokens for username.
func (b *bank) revokeEverySessionOf(clientID, username string) {
	for _, rt := range b.refreshTokens {
		if rt.clientID == clientID && rt.username == username {
			b.revokeChain(rt.chain)
		}
	}
}

// revokeAccessTokensIssuedWith revokes the access tokens issued with refresh.
func (b *bank) revokeAccessTokensIssuedWith(refresh string) {
	if refresh == "" {
		return
	}
	for _, at := range b.accessTokens {
		if at.refreshToken == refresh {
			at.revoked = true
		}
	}
}
