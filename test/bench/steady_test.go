package main

import (
	"strconv"
	"testing"
	"time"
)

func TestTokenIssuedAtReadsTheBanksToken(t *testing.T) {
	at := time.Date(2026, 12, 6, 9, 0, 0, 123, time.UTC)
	token := "bench-7-" + strconv.FormatInt(at.UnixNano(), 36)
	if got := tokenIssuedAt(token); !got.Equal(at) {
		t.Errorf("tokenIssuedAt = %s, want %s", got, at)
	}
	if got := tokenIssuedAt("not-a-bench-token!"); !got.IsZero() {
		t.Errorf("tokenIssuedAt of a foreign token = %s, want zero", got)
	}
}

func TestExpiryCountsTheTimeSecretsHeldExpiredTokens(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	o := newHistoryObserver()
	// Lifetime 60 s, window [100, 180). a: renewed in time at 140 (issued 90, seen 91), then
	// held to the end. b: issued at 50, expired at 110, replaced only at 130: 20 s expired,
	// 80 s old then. c: issued at 110, expired at 170, never replaced: 10 s expired at the end.
	o.tokens["a"] = []heldSeen{{seen: at(91), issued: at(90)}, {seen: at(140), issued: at(139)}}
	o.tokens["b"] = []heldSeen{{seen: at(51), issued: at(50)}, {seen: at(130), issued: at(129)}}
	o.tokens["c"] = []heldSeen{{seen: at(111), issued: at(110)}}
	got := o.expiry(at(100), at(180), time.Minute)
	if got.tokens != 2 || got.expiredTime != 30*time.Second {
		t.Errorf("expiry = %d tokens, %s expired; want 2, 30s", got.tokens, got.expiredTime)
	}
	if want := 30.0 / 240; got.share != want {
		t.Errorf("share = %g, want %g", got.share, want)
	}
	if got.oldest != 80*time.Second {
		t.Errorf("oldest = %s, want 80s (b's first token, replaced at 130)", got.oldest)
	}
}
