package controller

import (
	"testing"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

func TestWithCertificateDeliveryWritesWhatIsAskedAndTakesAwayWhatIsNot(t *testing.T) {
	material := providers.TLSMaterial{ClientCertificate: []byte("demo-chain"), ClientKey: "demo-key"}
	token := map[string][]byte{tokensv1alpha1.SecretKeyAccessToken: []byte("demo-token")}
	for _, c := range []struct {
		name              string
		delivery          tokensv1alpha1.CertificateDelivery
		wantCert, wantKey bool
	}{
		{"nothing asked", tokensv1alpha1.CertificateDelivery{}, false, false},
		{"the certificate", tokensv1alpha1.CertificateDelivery{Certificate: true}, true, false},
		{"the certificate and its key", tokensv1alpha1.CertificateDelivery{Certificate: true, PrivateKey: true}, true, true},
		{"a key without its certificate", tokensv1alpha1.CertificateDelivery{PrivateKey: true}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, before := range []map[string][]byte{token, withCertificateDelivery(token,
				tokensv1alpha1.CertificateDelivery{Certificate: true, PrivateKey: true}, material)} {
				got := withCertificateDelivery(before, c.delivery, material)
				_, hasCert := got[tokensv1alpha1.SecretKeyClientCertificate]
				_, hasKey := got[tokensv1alpha1.SecretKeyClientKey]
				if hasCert != c.wantCert || hasKey != c.wantKey || string(got[tokensv1alpha1.SecretKeyAccessToken]) != "demo-token" {
					t.Errorf("from %d keys: tls.crt %t, tls.key %t; want %t, %t, and the token kept", len(before), hasCert, hasKey, c.wantCert, c.wantKey)
				}
			}
		})
	}
	if len(token) != 1 {
		t.Error("the data given was modified")
	}
}

func TestAConsumerCopiesOnlyTheCertificatePartsItAskedFor(t *testing.T) {
	holder := map[string][]byte{tokensv1alpha1.SecretKeyAccessToken: []byte("demo-token"),
		tokensv1alpha1.SecretKeyClientCertificate: []byte("demo-chain"), tokensv1alpha1.SecretKeyClientKey: []byte("demo-key")}
	for _, c := range []struct {
		name              string
		delivery          *tokensv1alpha1.CertificateDelivery
		wantCert, wantKey bool
	}{
		{"none asked", nil, false, false},
		{"the certificate", &tokensv1alpha1.CertificateDelivery{Certificate: true}, true, false},
		{"both", &tokensv1alpha1.CertificateDelivery{Certificate: true, PrivateKey: true}, true, true},
	} {
		got := copiedCertificateDelivery(holder, c.delivery)
		_, hasCert := got[tokensv1alpha1.SecretKeyClientCertificate]
		_, hasKey := got[tokensv1alpha1.SecretKeyClientKey]
		if hasCert != c.wantCert || hasKey != c.wantKey {
			t.Errorf("%s: tls.crt %t, tls.key %t; want %t, %t", c.name, hasCert, hasKey, c.wantCert, c.wantKey)
		}
	}
}

func TestCheckCertificateDelivery(t *testing.T) {
	withCert := &tokensv1alpha1.TLSConfig{ClientCertificateSecretRef: &tokensv1alpha1.LocalSecretReference{Name: "client-tls"}}
	refusing := &resolvedConnection{Kind: tokensv1alpha1.KindClusterBankConnection, Name: "bank"}
	allowing := &resolvedConnection{Kind: tokensv1alpha1.KindClusterBankConnection, Name: "bank",
		Spec: tokensv1alpha1.BankConnectionSpec{PrivateKeyDelivery: tokensv1alpha1.PrivateKeyDeliveryAllowed}}
	both := &tokensv1alpha1.CertificateDelivery{Certificate: true, PrivateKey: true}
	for _, c := range []struct {
		name       string
		delivery   *tokensv1alpha1.CertificateDelivery
		tls        *tokensv1alpha1.TLSConfig
		conn       *resolvedConnection
		wantReason string
	}{
		{"nothing asked", nil, nil, refusing, ""},
		{"a certificate the client has none of", &tokensv1alpha1.CertificateDelivery{Certificate: true}, nil, nil, tokensv1alpha1.ReasonNoClientCertificate},
		{"an inline request's own key", both, withCert, nil, ""},
		{"the key of a connection that does not allow it", both, withCert, refusing, tokensv1alpha1.ReasonPrivateKeyDeliveryRefused},
		{"the certificate of a connection that does not allow its key", &tokensv1alpha1.CertificateDelivery{Certificate: true}, withCert, refusing, ""},
		{"the key of a connection that allows it", both, withCert, allowing, ""},
	} {
		btr := &tokensv1alpha1.BankTokenRequest{}
		btr.Spec.CertificateDelivery, btr.Spec.TLS = c.delivery, c.tls
		reason := ""
		if problem := checkCertificateDelivery(btr, c.conn); problem != nil {
			reason = problem.Reason
		}
		if reason != c.wantReason {
			t.Errorf("%s: %q, want %q", c.name, reason, c.wantReason)
		}
	}
}
