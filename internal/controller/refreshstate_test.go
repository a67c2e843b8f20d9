package controller

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

var stateNow = time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)

// What is written decodes to what was meant, and others' annotations survive every write.
func TestRefreshStateRoundTripsThroughItsSecret(t *testing.T) {
	want := refreshState{
		secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"team": "payments", annotationRefreshInFlight: "stale"}}},
		Active: "fixture-refresh-active", Standby: "fixture-refresh-standby", StandbySince: stateNow,
		BoundTo: "hash", RevocationEndpoint: "https://bank.example/revoke", Refusals: 2,
		Revocations: []pendingRevocation{{Token: "fixture-refresh-old", Endpoint: "https://bank.example/revoke", NotBefore: stateNow, Attempts: 1}},
	}
	data, annotations := want.encode()
	if annotations["team"] != "payments" {
		t.Fatal("an annotation someone else set was dropped")
	}
	if _, ok := annotations[annotationRefreshInFlight]; ok {
		t.Fatal("a mark the state no longer holds was kept")
	}
	got := decodeRefreshState(&corev1.Secret{Data: data, ObjectMeta: metav1.ObjectMeta{Annotations: annotations}})
	if got.Active != want.Active || got.Standby != want.Standby || !got.StandbySince.Equal(want.StandbySince) ||
		got.BoundTo != want.BoundTo || got.RevocationEndpoint != want.RevocationEndpoint || got.InFlight != "" || got.Refusals != want.Refusals ||
		len(got.Revocations) != 1 || got.Revocations[0] != want.Revocations[0] {
		t.Fatalf("decoded %+v", got)
	}
}

// An unreadable standby-since is unknown, and unknown means "just now" for every reader: the
// standby chain is neither refreshed nor revoked before the propagation delay has passed.
func TestRefreshStateTreatsAnUnreadableStandbySinceAsJustNow(t *testing.T) {
	for name, since := range map[string]string{"missing": "", "edited by hand": "yesterday"} {
		t.Run(name, func(t *testing.T) {
			secret := &corev1.Secret{Data: map[string][]byte{standbyRefreshTokenKey: []byte("fixture-refresh-standby")},
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{annotationStandbySince: since}}}
			s := decodeRefreshState(secret)
			if !s.StandbySince.IsZero() || !s.standbySinceOr(stateNow).Equal(stateNow) {
				t.Fatalf("standby since %v, read as %v", s.StandbySince, s.standbySinceOr(stateNow))
			}
		})
	}
}

// Storing chains binds them to the inputs, clears any mark, keeps the time a standby chain
// was superseded while it stays standby, and keeps nothing for a provider that cannot use it.
func TestChainsStoredIsBoundClearedAndKeepsTheStandbyTime(t *testing.T) {
	spec := &tokensv1alpha1.BankTokenRequestSpec{BankClient: tokensv1alpha1.BankClient{
		Provider: tokensv1alpha1.ProviderPaymob,
		Endpoint: "https://paymob.example/o/token/",
	}}
	held := refreshState{Active: "fixture-refresh-a", Standby: "fixture-refresh-s", StandbySince: stateNow.Add(-time.Minute), InFlight: "mark"}
	later := stateNow.Add(time.Hour)

	kept := chainsStored(held, spec, refreshChains{active: "fixture-refresh-b", standby: "fixture-refresh-s"}, nil, "hash", later)
	if kept.InFlight != "" || kept.BoundTo != "hash" || !kept.StandbySince.Equal(held.StandbySince) ||
		kept.RevocationEndpoint != providers.DefaultRevocationEndpoint(providers.Paymob, spec.Endpoint) {
		t.Fatalf("stored %+v", kept)
	}
	moved := chainsStored(held, spec, refreshChains{active: "fixture-refresh-c", standby: "fixture-refresh-b"}, nil, "hash", later)
	if !moved.StandbySince.Equal(later) {
		t.Fatalf("a new standby chain kept the old one's time: %v", moved.StandbySince)
	}
	partner := &tokensv1alpha1.BankTokenRequestSpec{BankClient: tokensv1alpha1.BankClient{
		Provider: tokensv1alpha1.ProviderRAKBankPartner,
	}}
	if none := chainsStored(held, partner, refreshChains{active: "fixture-refresh-b"}, nil, "hash", later); none.holdsChains() || none.BoundTo != "" {
		t.Fatalf("chains kept for a provider that takes no refresh_token grant: %+v", none)
	}
}
