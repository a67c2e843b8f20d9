package main

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// replayRefreshTokens is --prove-checks: it does what a broken operator would, sending
// each rotating bank's stored refresh token twice, so that the run must end in FAIL lines
// (reuse at both banks). It shows that the reuse check can fail; it never prints a token.
func (k *killNine) replayRefreshTokens(ctx context.Context) {
	guard, err := providers.NewEndpointGuard(providers.EndpointRules{AllowLoopback: true}) // the sandbox banks' address
	if err != nil {
		k.failf("--prove-checks: %v", err)
		return
	}
	fetcher := providers.NewClient(providers.ClientOptions{Timeout: 10 * time.Second, Guard: guard})
	defer fetcher.CloseIdleConnections()
	for _, btr := range k.set.requests {
		stored := &corev1.Secret{}
		// The operator's refresh-token Secret: <name>-refresh-token, key refresh_token.
		key := client.ObjectKey{Namespace: btr.Namespace, Name: btr.Name + "-refresh-token"}
		if err := k.w.cp.Client.Get(ctx, key, stored); err != nil {
			k.failf("--prove-checks: reading %s: %v", key, err)
			continue
		}
		req := k.w.bank.Request(providers.Name(btr.Spec.Provider))
		req.Scope = btr.Spec.Scope
		req.RefreshToken = providers.Secret(stored.Data["refresh_token"])
		for range 2 {
			_, _ = fetcher.Fetch(ctx, req) // the second call is the reuse; answers do not matter
		}
		logf("--prove-checks: sent %s's stored refresh token twice", btr.Name)
	}
}
