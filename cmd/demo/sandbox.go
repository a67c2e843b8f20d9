package main

import (
	"context"
	"fmt"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// Names of the objects the demo adds next to the samples.
const (
	caConfigMapName = "sandbox-bank-ca"
	clientTLSName   = "sandbox-bank-client-tls"
)

func (d *demo) startSandbox() error {
	lifetimes := map[providers.Name]time.Duration{}
	for _, b := range sandbox.AllBanks() {
		lifetimes[b] = d.opts.lifetime
	}
	logFile, err := os.Create(filepath.Join(d.runDir, "sandbox-bank.log"))
	if err != nil {
		return err
	}
	logger := log.New(logFile, "", log.LstdFlags|log.Lmicroseconds)
	d.bank, err = sandbox.Start(sandbox.Options{Lifetimes: lifetimes, Logf: logger.Printf})
	if err != nil {
		return fmt.Errorf("starting the sandbox banks: %w", err)
	}
	say("sandbox banks serving on %s over TLS (a CA generated for this run); access tokens live %s", d.bank.URL(), d.opts.lifetime)
	return nil
}

// prepareRequests reads one BankTokenRequest per bank from the samples and points it at the
// sandbox: the endpoint, the CA bundle, and whatever the sandbox bank requires that the
// sample, written for the real bank, has otherwise (scope, headers, metadata, client
// certificate). Everything else (grant, renewal, secretName, templates) is the sample's own.
func (d *demo) prepareRequests() error {
	files, err := filepath.Glob(filepath.Join(d.opts.samples, "*.yaml"))
	if err != nil {
		return err
	}
	byBank := map[providers.Name]*tokensv1alpha1.BankTokenRequest{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		btr := &tokensv1alpha1.BankTokenRequest{}
		if err := yaml.UnmarshalStrict(data, btr); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if btr.Kind != "BankTokenRequest" {
			continue
		}
		// The sandbox endpoint for the sample's provider and client authentication.
		name := harness.SandboxBank(btr)
		if !slices.Contains(sandbox.AllBanks(), name) {
			say("skipping %s: the sandbox has no %s bank", f, name)
			continue
		}
		if prev, dup := byBank[name]; dup {
			return fmt.Errorf("two samples for %s: %s and %s", name, prev.Name, btr.Name)
		}
		byBank[name] = btr
	}

	say("applying %s, rewritten for the sandbox:", d.opts.samples)
	d.bankOf = map[string]providers.Name{}
	for _, name := range sandbox.AllBanks() {
		btr, ok := byBank[name]
		if !ok {
			return fmt.Errorf("%s has no sample BankTokenRequest for %s", d.opts.samples, name)
		}
		changes := rewriteForSandbox(btr, d.bank, d.opts.namespace)
		fmt.Printf("      %-26s %-15s %s\n", btr.Name, name, strings.Join(changes, "; "))
		d.requests = append(d.requests, btr)
		d.bankOf[btr.Name] = name
	}
	return nil
}

// rewriteForSandbox changes btr to work against bank and says what it changed. The
// sample's own scope, headers and metadata stay where the sandbox bank accepts them.
func rewriteForSandbox(btr *tokensv1alpha1.BankTokenRequest, bank *sandbox.Server, namespace string) []string {
	sample := btr.Spec.DeepCopy()
	btr.Namespace = namespace
	harness.PointAtSandbox(btr, bank, caConfigMapName, clientTLSName)
	changes := []string{"endpoint → sandbox"}

	if btr.Spec.Scope == "" || scopeWithin(sample.Scope, btr.Spec.Scope) {
		btr.Spec.Scope = sample.Scope
	} else {
		changes = append(changes, fmt.Sprintf("scope %q → %q", sample.Scope, btr.Spec.Scope))
	}
	switch {
	case len(btr.Spec.Headers) == 0:
		btr.Spec.Headers = sample.Headers
	case !slices.Equal(btr.Spec.Headers, sample.Headers):
		var names []string
		for _, h := range btr.Spec.Headers {
			names = append(names, h.Name)
		}
		changes = append(changes, "headers → "+strings.Join(names, ", "))
	}
	switch {
	case len(btr.Spec.Metadata) == 0:
		btr.Spec.Metadata = sample.Metadata
	case !maps.Equal(btr.Spec.Metadata, sample.Metadata):
		changes = append(changes, "metadata → "+strings.Join(slices.Sorted(maps.Keys(btr.Spec.Metadata)), ", "))
	}

	tlsChange := "tls.caBundleRef → ConfigMap " + caConfigMapName
	if btr.Spec.TLS.ClientCertificateSecretRef != nil {
		tlsChange += ", client certificate → Secret " + clientTLSName
	}
	changes = append(changes, tlsChange)
	if btr.Spec.ClientAssertion != nil {
		changes = append(changes, "signing key → the sandbox's, in Secret "+btr.Spec.ClientAssertion.PrivateKeySecretRef.Name)
	}
	return changes
}

// scopeWithin reports whether every word of requested is one the bank grants.
func scopeWithin(requested, granted string) bool {
	for _, w := range strings.Fields(requested) {
		if !slices.Contains(strings.Fields(granted), w) {
			return false
		}
	}
	return true
}

// applySupportingObjects creates the credentials Secrets (the sandbox's fixture values, not
// secrets), the CA bundle ConfigMap and the client certificate Secret.
func (d *demo) applySupportingObjects(ctx context.Context) error {
	ns := d.opts.namespace
	if ns != "default" {
		if err := d.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	for _, o := range []client.Object{
		harness.CABundleConfigMap(d.bank, ns, caConfigMapName),
		harness.ClientCertificateSecret(d.bank, ns, clientTLSName),
	} {
		if err := d.k8s.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s: %w", o.GetName(), err)
		}
	}
	var created []string
	for _, btr := range d.requests {
		// The signing key (its kid from the sample's spec, else the sandbox's) goes next to the credentials.
		for _, secret := range []*corev1.Secret{harness.CredentialsSecret(d.bank, btr), harness.AssertionKeySecret(d.bank, btr)} {
			if secret == nil {
				continue
			}
			if err := d.k8s.Create(ctx, secret); err != nil {
				return fmt.Errorf("creating Secret %s: %w", secret.Name, err)
			}
			created = append(created, secret.Name)
		}
	}
	say("created in namespace %s: ConfigMap %s, Secret %s (mTLS), credentials and signing-key Secrets %s",
		ns, caConfigMapName, clientTLSName, strings.Join(created, ", "))
	return nil
}

func (d *demo) applyRequests(ctx context.Context) error {
	var names []string
	for _, btr := range d.requests {
		if err := d.k8s.Create(ctx, btr); err != nil {
			return fmt.Errorf("creating BankTokenRequest %s: %w", btr.Name, err)
		}
		names = append(names, btr.Name)
	}
	say("created %d BankTokenRequests: %s", len(names), strings.Join(names, ", "))
	if err := d.applyTenantRequests(ctx); err != nil {
		return err
	}
	d.liveStart = time.Now()
	return nil
}
