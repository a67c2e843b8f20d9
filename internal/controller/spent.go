package controller

import (
	"crypto/sha256"
	"sync"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// maxSpentRefreshTokens bounds the memory of spent refresh tokens; a reset only risks one
// extra invalid_grant, never a leak.
const maxSpentRefreshTokens = 100_000

// spentRefreshTokens remembers refresh tokens that were sent and may have been consumed, so
// that none is sent twice even when writing down its replacement failed. Only hashes are kept.
type spentRefreshTokens struct {
	mu     sync.Mutex
	hashes map[[32]byte]struct{}
}

func (s *spentRefreshTokens) add(rt providers.Secret) {
	if rt.IsZero() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hashes == nil || len(s.hashes) >= maxSpentRefreshTokens {
		s.hashes = map[[32]byte]struct{}{}
	}
	s.hashes[sha256.Sum256([]byte(rt.Reveal()))] = struct{}{}
}

func (s *spentRefreshTokens) contains(rt providers.Secret) bool {
	if rt.IsZero() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.hashes[sha256.Sum256([]byte(rt.Reveal()))]
	return ok
}
