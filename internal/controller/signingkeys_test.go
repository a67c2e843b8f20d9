package controller

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

func testSigningKey(t *testing.T) ([]byte, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	thumbprint, perr := providers.KeyThumbprint(providers.Secret(keyPEM))
	if perr != nil {
		t.Fatal(perr)
	}
	return keyPEM, thumbprint
}

func TestChooseSigningKey(t *testing.T) {
	currentPEM, currentThumbprint := testSigningKey(t)
	nextPEM, nextThumbprint := testSigningKey(t)
	switchAt := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	before, after := switchAt.Add(-time.Second), switchAt
	secret := func(data map[string]string) *corev1.Secret {
		s := &corev1.Secret{Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	withNextKeyFrom := func(a *tokensv1alpha1.ClientAssertion) { a.NextKeyFrom = &metav1.Time{Time: switchAt} }
	for _, c := range []struct {
		name       string
		assertion  func(*tokensv1alpha1.ClientAssertion)
		data       map[string]string
		now        time.Time
		wantKey    []byte
		wantKeyID  string
		wantStatus []tokensv1alpha1.SigningKeyStatus
		wantSwitch time.Time
	}{
		{
			name: "one key without a kid and no nextKeyFrom sends no kid, as before",
			data: map[string]string{"private.key": string(currentPEM)}, now: before,
			wantKey: currentPEM, wantKeyID: "",
			wantStatus: []tokensv1alpha1.SigningKeyStatus{{Slot: "Current", Thumbprint: currentThumbprint, InUse: true}},
		},
		{
			name:      "with nextKeyFrom the kid defaults to the RFC 7638 thumbprint",
			assertion: withNextKeyFrom, data: map[string]string{"private.key": string(currentPEM)}, now: after,
			wantKey: currentPEM, wantKeyID: currentThumbprint,
			wantStatus: []tokensv1alpha1.SigningKeyStatus{{Slot: "Current", Thumbprint: currentThumbprint, KeyID: currentThumbprint, InUse: true}},
		},
		{
			name:      "the Secret's kid wins over the thumbprint, and spec keyID over both",
			assertion: func(a *tokensv1alpha1.ClientAssertion) { withNextKeyFrom(a); a.KeyID = "demo-spec-kid" },
			data:      map[string]string{"private.key": string(currentPEM), "kid": "demo-secret-kid\n", "next.key": string(nextPEM), "next.kid": "demo-next-kid\n"},
			now:       before, wantKey: currentPEM, wantKeyID: "demo-spec-kid", wantSwitch: switchAt,
			wantStatus: []tokensv1alpha1.SigningKeyStatus{
				{Slot: "Current", Thumbprint: currentThumbprint, KeyID: "demo-spec-kid", InUse: true},
				{Slot: "Next", Thumbprint: nextThumbprint, KeyID: "demo-next-kid", From: &metav1.Time{Time: switchAt}},
			},
		},
		{
			name:      "the next key signs from nextKeyFrom, named by its thumbprint",
			assertion: withNextKeyFrom, data: map[string]string{"private.key": string(currentPEM), "next.key": string(nextPEM)},
			now: after, wantKey: nextPEM, wantKeyID: nextThumbprint, wantSwitch: switchAt,
			wantStatus: []tokensv1alpha1.SigningKeyStatus{
				{Slot: "Current", Thumbprint: currentThumbprint, KeyID: currentThumbprint},
				{Slot: "Next", Thumbprint: nextThumbprint, KeyID: nextThumbprint, InUse: true, From: &metav1.Time{Time: switchAt}},
			},
		},
		{
			name: "a next key without nextKeyFrom is staged, never used",
			data: map[string]string{"private.key": string(currentPEM), "next.key": string(nextPEM)},
			now:  after, wantKey: currentPEM, wantKeyID: "",
			wantStatus: []tokensv1alpha1.SigningKeyStatus{
				{Slot: "Current", Thumbprint: currentThumbprint, InUse: true},
				{Slot: "Next", Thumbprint: nextThumbprint, KeyID: nextThumbprint},
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			assertion := &tokensv1alpha1.ClientAssertion{PrivateKeySecretRef: tokensv1alpha1.PrivateKeySecretReference{Name: "signing-key"}}
			if c.assertion != nil {
				c.assertion(assertion)
			}
			key, keys := chooseSigningKey(assertion, secret(c.data), c.now)
			if string(key.PrivateKey) != string(c.wantKey) || key.KeyID != c.wantKeyID {
				t.Errorf("signs with the %s key, kid %q; want the %s key, kid %q",
					slotOf(key.PrivateKey, currentPEM), key.KeyID, slotOf(providers.Secret(c.wantKey), currentPEM), c.wantKeyID)
			}
			if !equalSigningKeyStatus(keys.status, c.wantStatus) {
				t.Errorf("status %+v, want %+v", keys.status, c.wantStatus)
			}
			if !keys.switchAt.Equal(c.wantSwitch) {
				t.Errorf("switchAt %v, want %v", keys.switchAt, c.wantSwitch)
			}
		})
	}
}

func TestSigningKeyStatusNamesAnUnreadableKeyWithoutItsValue(t *testing.T) {
	currentPEM, _ := testSigningKey(t)
	assertion := &tokensv1alpha1.ClientAssertion{NextKeyFrom: &metav1.Time{Time: time.Now().Add(time.Hour)}}
	_, keys := chooseSigningKey(assertion, &corev1.Secret{Data: map[string][]byte{
		"private.key": currentPEM, "next.key": []byte("demo-not-a-pem-key")}}, time.Now())
	next := keys.status[1]
	if next.Thumbprint != "" || next.Message == "" || strings.Contains(next.Message, "demo-not-a-pem-key") {
		t.Errorf("next key status %+v: want no thumbprint and a message that does not quote the value", next)
	}
}

func TestSigningKeySwitchIsOwedATokenOnlyByOneObtainedBeforeIt(t *testing.T) {
	switchAt := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	keys := signingKeys{switchAt: switchAt}
	before := &heldToken{IssuedAt: switchAt.Add(-time.Minute)}
	at := &heldToken{IssuedAt: switchAt}
	switch {
	case keys.switchDueFor(before, switchAt.Add(-time.Second)):
		t.Error("due before the set time")
	case !keys.switchDueFor(before, switchAt):
		t.Error("not due at the set time for a token obtained before it")
	case keys.switchDueFor(at, switchAt.Add(time.Hour)):
		t.Error("due again for a token obtained at the switch")
	case (signingKeys{}).switchDueFor(before, switchAt):
		t.Error("due without a switch")
	}
}

func slotOf(key providers.Secret, currentPEM []byte) string {
	if string(key) == string(currentPEM) {
		return "current"
	}
	return "next"
}

func equalSigningKeyStatus(a, b []tokensv1alpha1.SigningKeyStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Slot != y.Slot || x.Thumbprint != y.Thumbprint || x.KeyID != y.KeyID || x.InUse != y.InUse || x.Message != y.Message ||
			(x.From == nil) != (y.From == nil) || (x.From != nil && !x.From.Equal(y.From)) {
			return false
		}
	}
	return true
}
