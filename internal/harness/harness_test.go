package harness

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

func TestRepoRootHoldsGoModAndTheCRD(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(root, "go.mod"), CRDDirectory(root)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestProcReadingsOfThisProcess(t *testing.T) {
	stat, ok := readProcStat(os.Getpid())
	if !ok || stat.ppid != os.Getppid() || stat.name == "" || stat.state == "Z" {
		t.Fatalf("readProcStat(self) = %+v, %v", stat, ok)
	}
	peak, current := memoryOf(os.Getpid())
	if current <= 0 || peak < current {
		t.Errorf("memory: peak %d, current %d", peak, current)
	}
}

func TestSandboxRequestCarriesWhatEachBankRequires(t *testing.T) {
	bank, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bank.Close()
	for _, name := range sandbox.AllBanks() {
		r := NewSandboxRequest(bank, name, "ns", "req")
		creds := bank.Credentials(name)
		spec := r.Request.Spec
		if spec.Endpoint != bank.TokenURL(name) || spec.Scope != creds.Scope || len(spec.Headers) != len(creds.Headers) {
			t.Errorf("%s: spec %+v does not point at the sandbox", name, spec)
		}
		if string(r.Credentials.Data["client_id"]) != creds.ClientID || r.Credentials.Name != spec.CredentialsSecretRef.Name {
			t.Errorf("%s: credentials Secret %s does not hold the bank's client", name, r.Credentials.Name)
		}
		if wantCert := name == providers.RAKBankPartner || name == sandbox.MTLSServer; (r.ClientCertificate != nil) != wantCert {
			t.Errorf("%s: client certificate present = %v, want %v", name, r.ClientCertificate != nil, wantCert)
		}
		if wantKey := name == sandbox.SignedJWTRealm; (r.AssertionKey != nil) != wantKey ||
			(wantKey && r.AssertionKey.Name != spec.ClientAssertion.PrivateKeySecretRef.Name) {
			t.Errorf("%s: assertion key Secret %v, want one: %v", name, r.AssertionKey, wantKey)
		}
		if SandboxBank(r.Request) != name {
			t.Errorf("%s: the request is served by %s", name, SandboxBank(r.Request))
		}
	}
}
