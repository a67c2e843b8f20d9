package main

import (
	"strings"
	"testing"

	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// The samples are read as they are and rewritten only where the sandbox differs from the
// real bank; the demo run in `make test` checks that the result actually gets tokens.
func TestSamplesRewrittenForSandbox(t *testing.T) {
	bank, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bank.Close()
	d := &demo{opts: options{samples: "../../config/samples", namespace: "demo"}, bank: bank}
	if err := d.prepareRequests(); err != nil {
		t.Fatal(err)
	}
	if len(d.requests) != len(sandbox.AllBanks()) {
		t.Fatalf("want one request per sandbox bank, got %d", len(d.requests))
	}
	for _, btr := range d.requests {
		name := d.bankOf[btr.Name]
		creds := bank.Credentials(name)
		if btr.Namespace != "demo" || btr.Spec.Endpoint != bank.TokenURL(name) {
			t.Errorf("%s: namespace %q endpoint %q", btr.Name, btr.Namespace, btr.Spec.Endpoint)
		}
		if btr.Spec.TLS == nil || btr.Spec.TLS.CABundleRef == nil || btr.Spec.TLS.CABundleRef.Name != caConfigMapName {
			t.Errorf("%s: CA bundle not the sandbox's: %+v", btr.Name, btr.Spec.TLS)
		}
		if creds.Scope != "" && !scopeWithin(btr.Spec.Scope, creds.Scope) {
			t.Errorf("%s: scope %q is not granted by the sandbox (%q)", btr.Name, btr.Spec.Scope, creds.Scope)
		}
		for _, h := range creds.Headers {
			found := false
			for _, got := range btr.Spec.Headers {
				found = found || (got.Name == h.Name && got.Value == h.Value)
			}
			if !found {
				t.Errorf("%s: header %s missing", btr.Name, h.Name)
			}
		}
		switch name {
		case providers.RAKBankPartner:
			if btr.Spec.TLS.ClientCertificateSecretRef == nil || btr.Spec.TLS.ClientCertificateSecretRef.Name != clientTLSName {
				t.Errorf("%s: no client certificate", btr.Name)
			}
			if btr.Spec.Metadata["account_id"] != creds.Metadata["account_id"] {
				t.Errorf("%s: metadata %v", btr.Name, btr.Spec.Metadata)
			}
		case sandbox.MTLSServer:
			if btr.Spec.ClientAuthentication != "TLSClientAuth" || btr.Spec.TLS.ClientCertificateSecretRef == nil {
				t.Errorf("%s: not tls_client_auth with a client certificate: %+v", btr.Name, btr.Spec)
			}
		case sandbox.SignedJWTRealm:
			if key := harness.AssertionKeySecret(bank, btr); key == nil || key.Name != "banfico-signing-key" {
				t.Errorf("%s: the sample's signing key Secret is not kept: %v", btr.Name, btr.Spec.ClientAssertion)
			}
		case providers.Paymob:
			// What the sample says and the sandbox accepts is kept.
			if btr.Spec.Scope != "read write" || btr.Spec.SecretName != "paymob-token" {
				t.Errorf("%s: sample fields changed: scope %q secretName %q", btr.Name, btr.Spec.Scope, btr.Spec.SecretName)
			}
		}
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("abcdef", 4); got != "abc…" {
		t.Errorf("got %q", got)
	}
	if got := truncate(strings.Repeat("é", 3), 3); got != "ééé" {
		t.Errorf("got %q", got)
	}
}
