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
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
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
	for _, b := range sandbox.Banks() {
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
		name := providers.Name(btr.Spec.Provider)
		if !slices.Contains(sandbox.Banks(), name) {
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
	for _, name := range sandbox.Banks() {
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

// rewriteForSandbox changes btr to work against bank and says what it changed.
func rewriteForSandbox(btr *tokensv1alpha1.BankTokenRequest, bank *sandbox.Server, namespace string) []string {
	name := providers.Name(btr.Spec.Provider)
	creds := bank.Credentials(name)
	btr.Namespace = namespace
	btr.Spec.Endpoint = bank.TokenURL(name)
	changes := []string{"endpoint → sandbox"}

	if creds.Scope != "" && !scopeWithin(btr.Spec.Scope, creds.Scope) {
		changes = append(changes, fmt.Sprintf("scope %q → %q", btr.Spec.Scope, creds.Scope))
		btr.Spec.Scope = creds.Scope
	}
	if len(creds.Headers) > 0 {
		var headers []tokensv1alpha1.HTTPHeader
		var names []string
		for _, h := range creds.Headers {
			headers = append(headers, tokensv1alpha1.HTTPHeader{Name: h.Name, Value: h.Value})
			names = append(names, h.Name)
		}
		if !slices.Equal(headers, btr.Spec.Headers) {
			btr.Spec.Headers = headers
			changes = append(changes, "headers → "+strings.Join(names, ", "))
		}
	}
	if len(creds.Metadata) > 0 && !maps.Equal(creds.Metadata, btr.Spec.Metadata) {
		btr.Spec.Metadata = maps.Clone(creds.Metadata)
		changes = append(changes, "metadata → "+strings.Join(slices.Sorted(maps.Keys(creds.Metadata)), ", "))
	}

	tls := &tokensv1alpha1.TLSConfig{CABundleRef: &tokensv1alpha1.CABundleReference{
		Kind: "ConfigMap", Name: caConfigMapName, Key: tokensv1alpha1.DefaultCABundleKey}}
	tlsChange := "tls.caBundleRef → ConfigMap " + caConfigMapName
	if name == providers.RAKBankPartner {
		tls.ClientCertificateSecretRef = &tokensv1alpha1.LocalSecretReference{Name: clientTLSName}
		tlsChange += ", client certificate → Secret " + clientTLSName
	}
	btr.Spec.TLS = tls
	changes = append(changes, tlsChange)
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
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: caConfigMapName, Namespace: ns},
		Data: map[string]string{tokensv1alpha1.DefaultCABundleKey: string(d.bank.CABundle())}}
	if err := d.k8s.Create(ctx, cm); err != nil {
		return fmt.Errorf("creating ConfigMap %s: %w", cm.Name, err)
	}
	certPEM, keyPEM := d.bank.ClientCertificate()
	tlsSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: clientTLSName, Namespace: ns},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}
	if err := d.k8s.Create(ctx, tlsSecret); err != nil {
		return fmt.Errorf("creating Secret %s: %w", tlsSecret.Name, err)
	}
	var created []string
	for _, btr := range d.requests {
		creds := d.bank.Credentials(d.bankOf[btr.Name])
		ref := btr.Spec.CredentialsSecretRef
		data := map[string][]byte{
			keyOr(ref.ClientIDKey, tokensv1alpha1.DefaultClientIDKey):         []byte(creds.ClientID),
			keyOr(ref.ClientSecretKey, tokensv1alpha1.DefaultClientSecretKey): []byte(creds.ClientSecret),
		}
		if creds.Username != "" {
			data[keyOr(ref.UsernameKey, tokensv1alpha1.DefaultUsernameKey)] = []byte(creds.Username)
			data[keyOr(ref.PasswordKey, tokensv1alpha1.DefaultPasswordKey)] = []byte(creds.Password)
		}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ref.Name, Namespace: ns}, Data: data}
		if err := d.k8s.Create(ctx, secret); err != nil {
			return fmt.Errorf("creating Secret %s: %w", secret.Name, err)
		}
		created = append(created, ref.Name)
	}
	say("created in namespace %s: ConfigMap %s, Secret %s (mTLS), credentials Secrets %s",
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
	d.liveStart = time.Now()
	say("created %d BankTokenRequests: %s", len(names), strings.Join(names, ", "))
	return nil
}

func keyOr(key, def string) string {
	if key != "" {
		return key
	}
	return def
}
