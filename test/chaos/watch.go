package main

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// watchInterval is how often each output Secret is read and its token shown to the bank.
const watchInterval = 100 * time.Millisecond

// tokenWatch reads output Secrets as a workload would and asks the bank, as a resource
// server would, whether the token in each is accepted. When the apiserver cannot be read
// it keeps judging the token last read: a mounted Secret keeps its content too.
type tokenWatch struct {
	reader client.Reader
	bank   *sandbox.Server
	// lostAfter is how long a refused or missing token may last before it counts as lost.
	lostAfter time.Duration

	mu     sync.Mutex
	tokens map[client.ObjectKey]*watchedToken
}

// watchedToken is what the watch has seen of one output Secret. It keeps no token, only
// whether the last one read was accepted.
type watchedToken struct {
	bankName  providers.Name
	token     string
	expiresAt time.Time

	everValid      bool
	checkedAt      time.Time
	valid          bool
	invalidSince   time.Time
	longestInvalid time.Duration
	// lost counts refused-or-missing stretches longer than lostAfter; empty counts reads
	// of a missing or empty Secret once a token was held.
	lost, empty int
	stretchLost bool
	// expired counts tokens seen still held after their expires_at.
	expired      int
	expiredToken string
}

func newTokenWatch(reader client.Reader, bank *sandbox.Server, lostAfter time.Duration) *tokenWatch {
	return &tokenWatch{reader: reader, bank: bank, lostAfter: lostAfter, tokens: map[client.ObjectKey]*watchedToken{}}
}

// add watches btr's output Secret.
func (tw *tokenWatch) add(btr *tokensv1alpha1.BankTokenRequest) {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.tokens[outputKey(btr)] = &watchedToken{bankName: providers.Name(btr.Spec.Provider)}
}

// run reads every watched Secret each interval until ctx ends.
func (tw *tokenWatch) run(ctx context.Context) {
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		tw.mu.Lock()
		keys := make([]client.ObjectKey, 0, len(tw.tokens))
		for k := range tw.tokens {
			keys = append(keys, k)
		}
		tw.mu.Unlock()
		for _, k := range keys {
			tw.observe(ctx, k)
		}
	}
}

func (tw *tokenWatch) observe(ctx context.Context, key client.ObjectKey) {
	secret := &corev1.Secret{}
	readCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := tw.reader.Get(readCtx, key, secret)
	cancel()
	now := time.Now()
	tw.mu.Lock()
	defer tw.mu.Unlock()
	t := tw.tokens[key]
	if err == nil || client.IgnoreNotFound(err) == nil {
		t.token = string(secret.Data["access_token"])
		t.expiresAt, _ = time.Parse(time.RFC3339, string(secret.Data["expires_at"]))
		if t.token == "" && t.everValid {
			t.empty++
		}
	}
	t.record(now, t.token != "" && tw.bank.AccessTokenValid(t.bankName, t.token), tw.lostAfter)
}

func (t *watchedToken) record(now time.Time, valid bool, lostAfter time.Duration) {
	t.checkedAt, t.valid = now, valid
	// expires_at is whole seconds: a second's grace before calling a token expired.
	if t.token != "" && !t.expiresAt.IsZero() && now.After(t.expiresAt.Add(time.Second)) && t.expiredToken != t.token {
		t.expired++
		t.expiredToken = t.token
	}
	switch {
	case valid:
		t.everValid = true
		t.invalidSince, t.stretchLost = time.Time{}, false
	case !t.everValid:
		// The first token is not issued yet: nothing to lose.
	case t.invalidSince.IsZero():
		t.invalidSince = now
	default:
		stretch := now.Sub(t.invalidSince)
		t.longestInvalid = max(t.longestInvalid, stretch)
		if stretch > lostAfter && !t.stretchLost {
			t.lost++
			t.stretchLost = true
		}
	}
}

// waitValid waits until a read after since finds a token the bank accepts in key's
// Secret, and says how long after since that read was.
func (tw *tokenWatch) waitValid(ctx context.Context, key client.ObjectKey, since time.Time, timeout time.Duration) (time.Duration, bool) {
	deadline := since.Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		tw.mu.Lock()
		t := tw.tokens[key]
		ok, at := t.valid && t.checkedAt.After(since), t.checkedAt
		tw.mu.Unlock()
		if ok {
			return at.Sub(since), true
		}
		time.Sleep(watchInterval / 4)
	}
	return time.Since(since), false
}

// leastRemaining is the shortest time any watched token has left before its expires_at, as
// last read (a Secret not yet holding a token does not count).
func (tw *tokenWatch) leastRemaining(now time.Time) time.Duration {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	least := time.Duration(1<<63 - 1)
	for _, t := range tw.tokens {
		if t.token != "" && !t.expiresAt.IsZero() {
			least = min(least, t.expiresAt.Sub(now))
		}
	}
	return least
}

// snapshot is a copy of what the watch saw of key.
func (tw *tokenWatch) snapshot(key client.ObjectKey) watchedToken {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	t := *tw.tokens[key]
	t.token, t.expiredToken = "", ""
	return t
}

// outputKey names btr's output Secret.
func outputKey(btr *tokensv1alpha1.BankTokenRequest) client.ObjectKey {
	name := btr.Spec.SecretName
	if name == "" {
		name = btr.Name
	}
	return client.ObjectKey{Namespace: btr.Namespace, Name: name}
}
