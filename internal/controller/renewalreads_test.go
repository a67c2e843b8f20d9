package controller

import (
	"testing"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// What a renewal reads from the apiserver: every Secret it sends or replaces, and no Secret
// that status and the metadata caches agree does not exist.

// renewalReads issues a token, renews it once, and returns the Secret reads of the renewal.
func renewalReads(t *testing.T, noRefreshTokens bool) (*fixture, int) {
	t.Helper()
	f := newFixture(t)
	f.bank.noRefreshTokens = noRefreshTokens
	reads := f.withMetadataCaches()
	f.issue()
	f.stepToRenewal()
	before := reads.count
	f.reconcile()
	f.expectCalls(2)
	return f, reads.count - before
}

func TestRenewalWithoutARefreshTokenReadsOnlyTheOutputAndCredentialsSecrets(t *testing.T) {
	f, reads := renewalReads(t, true)
	if f.secret(refreshSecretName(f.resource())) != nil {
		t.Fatal("a refresh-token Secret exists though the bank issued no refresh token")
	}
	if reads != 2 {
		t.Errorf("the renewal read %d Secrets; want 2: the output Secret and the credentials, not the refresh-token Secret status says does not exist", reads)
	}
	f.expectLastCall(2, providers.GrantPassword, "the renewal was not a primary grant, though no refresh token was issued")
}

func TestRenewalWithARefreshTokenReadsItsSecret(t *testing.T) {
	f, reads := renewalReads(t, false)
	if reads != 3 {
		t.Errorf("the renewal read %d Secrets; want 3: the output, refresh-token and credentials Secrets", reads)
	}
	f.expectLastCall(2, providers.GrantRefreshToken, "the renewal did not spend the refresh token it holds")
}
