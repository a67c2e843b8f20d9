package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// rotatingBanks are the banks whose refresh tokens are single-use: Paymob rotates them,
// and Banfico (Keycloak with "Revoke Refresh Token") also revokes the grant of a reused one.
var rotatingBanks = []providers.Name{providers.Paymob, providers.Banfico}

// bankCounts are a bank's counters that a scenario reports as differences.
type bankCounts struct {
	refreshes, primaryGrants, reuses int
}

func countsAt(w *world, b providers.Name) bankCounts {
	return bankCounts{
		refreshes:     w.bank.Issued(b, providers.GrantRefreshToken),
		primaryGrants: w.bank.Issued(b, providers.GrantPassword) + w.bank.Issued(b, providers.GrantClientCredentials),
		reuses:        w.bank.ReusedRefreshTokens(b),
	}
}

func (c bankCounts) since(before bankCounts) bankCounts {
	return bankCounts{c.refreshes - before.refreshes, c.primaryGrants - before.primaryGrants, c.reuses - before.reuses}
}

// tokenSet is one scenario's BankTokenRequests, one per rotating bank in a namespace of
// its own, their output Secrets under watch, and the banks' counters when it began.
type tokenSet struct {
	w        *world
	watch    *tokenWatch
	requests []*tokensv1alpha1.BankTokenRequest
	before   map[providers.Name]bankCounts
}

// newTokenSet creates namespace and the requests (changed by adjust first) and starts
// watching their output Secrets until ctx ends.
func newTokenSet(ctx context.Context, w *world, namespace string, lostAfter time.Duration,
	adjust func(*tokensv1alpha1.BankTokenRequest)) (*tokenSet, error) {
	s := &tokenSet{w: w, watch: newTokenWatch(w.cp.Client, w.bank, lostAfter), before: map[providers.Name]bankCounts{}}
	if err := w.createNamespace(ctx, namespace); err != nil {
		return nil, err
	}
	for _, b := range rotatingBanks {
		btr, err := w.applyRequest(ctx, namespace, b, adjust)
		if err != nil {
			return nil, err
		}
		s.requests = append(s.requests, btr)
		s.watch.add(btr)
		s.before[b] = countsAt(w, b)
	}
	go s.watch.run(ctx)
	return s, nil
}

// waitFirstTokens waits until every output Secret holds a token the bank accepts.
func (s *tokenSet) waitFirstTokens(ctx context.Context, timeout time.Duration) error {
	for _, btr := range s.requests {
		if _, ok := s.watch.waitValid(ctx, outputKey(btr), time.Now(), timeout); !ok {
			return fmt.Errorf("%s: no first token the bank accepts within %s", btr.Name, timeout)
		}
	}
	return nil
}

// counts are bank's counters since the set began.
func (s *tokenSet) counts(b providers.Name) bankCounts {
	return countsAt(s.w, b).since(s.before[b])
}

// renewingBefore adjusts a request to be renewed d before its token expires.
func renewingBefore(d time.Duration) func(*tokensv1alpha1.BankTokenRequest) {
	return func(btr *tokensv1alpha1.BankTokenRequest) { btr.Spec.RenewBefore = &metav1.Duration{Duration: d} }
}
