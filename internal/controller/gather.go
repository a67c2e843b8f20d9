package controller

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// inputProblem is a reason the request cannot be sent that only the user can fix: a missing
// Secret, a missing key, an insecure endpoint, a Secret name taken by someone else.
// It travels as an error value from the read that finds it; gather turns it into
// gathered.Problem, the one place a decision reads it.
type inputProblem struct {
	Reason  string
	Message string
}

func (p *inputProblem) Error() string { return p.Reason + ": " + p.Message }

// isInputProblem says whether err is an input problem rather than a failure to read.
func isInputProblem(err error) bool {
	var problem *inputProblem
	return errors.As(err, &problem)
}

// gathered is everything a decision needs, read once per reconcile.
type gathered struct {
	// Request is the effective request (see connection.go).
	Request *tokensv1alpha1.BankTokenRequest
	// Connection is the connection the request gets its client from; nil for an inline
	// request. It is where a call budget shared by a connection's requests is found.
	Connection *resolvedConnection

	// Problem is set when the inputs cannot make a request; the fields below it that
	// depend on the inputs are then incomplete.
	Problem *inputProblem

	Credentials providers.Credentials
	TLS         providers.TLSMaterial
	// ClientCertificate is the client certificate read (the first of its chain), nil when
	// none is configured or it cannot be parsed (the providers client then reports it).
	ClientCertificate *x509.Certificate
	// SigningKeys describes the client assertion keys and when the next takes over.
	SigningKeys signingKeys
	// RequestHash fingerprints the spec fields that shape the request and the versions of
	// the referenced objects (never their values).
	RequestHash string
	// ReferencedVersions are the versions of the referenced objects read (referenceVersion),
	// for status.observed.
	ReferencedVersions []string

	OutputSecret *corev1.Secret
	// Held is the intact token in the output Secret, nil when missing or altered;
	// HeldProblem then says why.
	Held        *heldToken
	HeldProblem string

	// Refresh is the refresh-token Secret, decoded (see refreshstate.go).
	Refresh refreshState

	// Issuer is what the issuer's metadata gave, nil for a spec without an issuer (see issuer.go).
	Issuer *issuerResolution
}

// gather reads the resource's inputs. Secrets and ConfigMaps are read from the apiserver,
// not a cache: the operator caches no Secret data at all. An error is returned only for
// failures to talk to the apiserver; a problem with the inputs, returned by the read that
// found it as an *inputProblem, lands in gathered.Problem.
func (r *BankTokenRequestReconciler) gather(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, conn *resolvedConnection) (*gathered, error) {
	g := &gathered{Request: btr, Connection: conn}
	err := r.readInputs(ctx, btr, g)
	var problem *inputProblem
	if errors.As(err, &problem) {
		g.Problem = problem
		return g, nil
	}
	return g, err
}

// readInputs reads what gather gathers, stopping at the first problem or failure.
func (r *BankTokenRequestReconciler) readInputs(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) error {
	// Before any read: a name no object can have is refused by the apiserver on every try.
	if problem := checkSpec(btr); problem != nil {
		return problem
	}
	// The Secrets the operator writes: read first, so that a conflict is reported before anything is sent.
	if err := r.readOwnedSecrets(ctx, btr, g); err != nil {
		return err
	}
	if problem := checkCertificateDelivery(btr, g.Connection); problem != nil {
		return problem
	}
	var versions []string
	var err error
	if btr.Spec.Issuer == "" {
		if problem := r.checkEndpoint(btr); problem != nil {
			return problem
		}
		if versions, err = r.readClient(ctx, btr, g); err != nil {
			return err
		}
	} else {
		// The metadata is read over the client's TLS material, and names the endpoint checked.
		if versions, err = r.readClient(ctx, btr, g); err != nil {
			return err
		}
		if problem := r.resolveIssuer(ctx, btr, g); problem != nil {
			return problem
		}
		if problem := r.checkEndpoint(btr); problem != nil {
			return problem
		}
	}
	g.RequestHash = requestHash(&btr.Spec, versions)
	return nil
}

// readClient reads what the bank client proves itself with (credentials, the client
// assertion key, TLS material) and returns the versions of the objects read.
func (r *BankTokenRequestReconciler) readClient(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) ([]string, error) {
	credentialsVersion, err := r.readCredentials(ctx, btr, g)
	if err != nil {
		return nil, err
	}
	keyVersion, err := r.readAssertionKey(ctx, btr, g)
	if err != nil {
		return nil, err
	}
	tlsVersions, err := r.readTLS(ctx, btr, g)
	if err != nil {
		return nil, err
	}
	versions := append([]string{credentialsVersion}, tlsVersions...)
	if keyVersion != "" {
		versions = append(versions, keyVersion)
	}
	return versions, nil
}

// referencesNamespace is where the client's Secrets and ConfigMaps are read.
func (g *gathered) referencesNamespace() string { return referencesNamespace(g.Request, g.Connection) }

// referencesNamespace is where btr's client's Secrets and ConfigMaps are read: conn's
// Secrets namespace when it names one, else btr's own.
func referencesNamespace(btr *tokensv1alpha1.BankTokenRequest, conn *resolvedConnection) string {
	if conn != nil {
		return conn.SecretsNamespace
	}
	return btr.Namespace
}

// readAssertionKey reads the private key that signs PrivateKeyJWT client assertions, and
// returns its Secret's version; "" when the spec names no key.
func (r *BankTokenRequestReconciler) readAssertionKey(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) (string, error) {
	assertion := btr.Spec.ClientAssertion
	if assertion == nil {
		return "", nil
	}
	ref := assertion.PrivateKeySecretRef
	privateKeyKey, _ := assertionKeyNames(ref)
	secret, err := r.sentSecret(ctx, g.referencesNamespace(), ref.Name, "client assertion key", tokensv1alpha1.ReasonKeySecretNotFound, []string{privateKeyKey})
	if err != nil {
		return "", err
	}
	g.Credentials.AssertionKey, g.SigningKeys = chooseSigningKey(assertion, secret, r.Clock.Now())
	return g.referenced("Secret", secret), nil
}

// referenced notes the version of a referenced object read, and returns it as the request
// hash takes it.
func (g *gathered) referenced(kind string, obj metav1.Object) string {
	g.ReferencedVersions = append(g.ReferencedVersions, referenceVersion(kind, obj.GetName(), obj.GetResourceVersion()))
	return objectVersion(kind, obj.GetName(), obj.GetUID(), obj.GetResourceVersion())
}

// readOwnedSecrets reads the output and refresh-token Secrets, refusing either when it
// belongs to something else.
func (r *BankTokenRequestReconciler) readOwnedSecrets(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) error {
	var err error
	if g.OutputSecret, err = r.readOwnedSecret(ctx, btr, outputSecretName(btr), false,
		"; choose another spec.secretName or delete it"); err != nil {
		return err
	}
	g.Held, g.HeldProblem = readHeldToken(g.OutputSecret)
	// A grant that brought no refresh token (client credentials) leaves no refresh-token
	// Secret: the last status says so, and its renewals need not read it.
	recordedAbsent := btr.Status.Observed != nil && btr.Status.Observed.RefreshTokenSecret == ""
	refreshSecret, err := r.readOwnedSecret(ctx, btr, refreshSecretName(btr), recordedAbsent, " (it is where the refresh token is kept)")
	if err != nil {
		return err
	}
	g.Refresh = decodeRefreshState(refreshSecret)
	return nil
}

// readOwnedSecret reads a Secret the operator writes. One that exists and belongs to
// something else is a SecretConflict, with advice appended to the message.
func (r *BankTokenRequestReconciler) readOwnedSecret(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, name string, recordedAbsent bool, advice string) (*corev1.Secret, error) {
	secret, err := r.getOwnedSecret(ctx, btr, name, recordedAbsent)
	if err != nil || secret == nil || isControlledBy(secret, btr) {
		return secret, err
	}
	return nil, &inputProblem{tokensv1alpha1.ReasonSecretConflict, fmt.Sprintf(
		"Secret %s/%s exists and is not owned by this BankTokenRequest%s", btr.Namespace, name, advice)}
}

// readCredentials reads the credentials Secret's keys that the grant needs, and returns
// the Secret's version for the request hash.
func (r *BankTokenRequestReconciler) readCredentials(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) (string, error) {
	ref := btr.Spec.CredentialsSecretRef
	keys := credentialKeys(btr)
	creds, err := r.sentSecret(ctx, g.referencesNamespace(), ref.Name, "credentials", tokensv1alpha1.ReasonCredentialsSecretNotFound, keys.required())
	if err != nil {
		return "", err
	}
	g.Credentials = providers.Credentials{
		ClientID:     string(creds.Data[keys.clientID]),
		ClientSecret: providers.Secret(creds.Data[keys.clientSecret]),
		Username:     string(creds.Data[keys.username]),
		Password:     providers.Secret(creds.Data[keys.password]),
		// A chosen key may point them at any value of the Secret.
		MaskIdentifiers: ref.ClientIDKey != "" || ref.UsernameKey != "",
	}
	return g.referenced("Secret", creds), nil
}

// readTLS reads the CA bundle and client certificate, and returns their versions.
func (r *BankTokenRequestReconciler) readTLS(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) ([]string, error) {
	tls := btr.Spec.TLS
	if tls == nil {
		return nil, nil
	}
	var versions []string
	if ca := tls.CABundleRef; ca != nil {
		bundle, version, err := r.readCABundle(ctx, g.referencesNamespace(), ca, g)
		if err != nil {
			return nil, err
		}
		g.TLS.CABundle = bundle
		versions = append(versions, version)
	}
	if cc := tls.ClientCertificateSecretRef; cc != nil {
		secret, err := r.sentSecret(ctx, g.referencesNamespace(), cc.Name, "client certificate", tokensv1alpha1.ReasonTLSSecretNotFound,
			[]string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey})
		if err != nil {
			return nil, err
		}
		g.TLS.ClientCertificate = secret.Data[corev1.TLSCertKey]
		g.TLS.ClientKey = providers.Secret(secret.Data[corev1.TLSPrivateKeyKey])
		versions = append(versions, g.referenced("Secret", secret))
		g.ClientCertificate = firstCertificate(g.TLS.ClientCertificate)
	}
	return versions, nil
}

// firstCertificate parses the first certificate of a PEM chain; nil when there is none.
func firstCertificate(chainPEM []byte) *x509.Certificate {
	block, _ := pem.Decode(chainPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	return cert
}

// sentSecret reads a referenced Secret whose values go to the bank (credentials, the client
// assertion key, the client certificate): it must exist, be of a kind ever sent (sendable),
// be opted in (optedIn) and hold keys; the first it fails is the input problem returned.
func (r *BankTokenRequestReconciler) sentSecret(ctx context.Context, namespace, name, what, notFoundReason string, keys []string) (*corev1.Secret, error) {
	secret, err := r.requiredSecret(ctx, namespace, name, what, notFoundReason)
	if err != nil {
		return nil, err
	}
	if problem := cmp.Or(sendable(secret, what), r.optedIn(secret, what), hasKeys(secret, keys, what)); problem != nil {
		return nil, problem
	}
	return secret, nil
}

// requiredSecret reads a referenced Secret; a missing one is the input problem reason,
// described as what ("credentials", "client certificate").
func (r *BankTokenRequestReconciler) requiredSecret(ctx context.Context, namespace, name, what, reason string) (*corev1.Secret, error) {
	secret, err := r.getSecret(ctx, namespace, name)
	if err == nil && secret == nil {
		return nil, &inputProblem{reason, fmt.Sprintf("%s Secret %s/%s not found", what, namespace, name)}
	}
	return secret, err
}

// hasKeys is the input problem of a Secret that lacks one of keys; nil when it has all.
func hasKeys(secret *corev1.Secret, keys []string, what string) *inputProblem {
	for _, key := range keys {
		if len(secret.Data[key]) == 0 {
			return &inputProblem{tokensv1alpha1.ReasonCredentialsKeyMissing,
				fmt.Sprintf("no key %q in %s Secret %s/%s", key, what, secret.Namespace, secret.Name)}
		}
	}
	return nil
}

func (r *BankTokenRequestReconciler) checkEndpoint(btr *tokensv1alpha1.BankTokenRequest) *inputProblem {
	// The CRD admits http so that tests can run a plain fake; production operators refuse it.
	if u, err := url.Parse(btr.Spec.Endpoint); err == nil && !r.AllowInsecureEndpoints && strings.EqualFold(u.Scheme, "http") {
		return &inputProblem{tokensv1alpha1.ReasonInsecureEndpoint,
			"endpoint uses http: credentials would cross the network in clear text; use https " +
				"(http is accepted only when the operator runs with --allow-insecure-endpoints, for tests)"}
	}
	return nil
}

// readCABundle reads the trusted CA bundle from a ConfigMap or a Secret and returns it
// with the object's version.
func (r *BankTokenRequestReconciler) readCABundle(ctx context.Context, namespace string, ref *tokensv1alpha1.CABundleReference, g *gathered) ([]byte, string, error) {
	key := ref.Key
	if key == "" {
		key = tokensv1alpha1.DefaultCABundleKey
	}
	if ref.Kind == "Secret" {
		secret, err := r.requiredSecret(ctx, namespace, ref.Name, "CA bundle", tokensv1alpha1.ReasonTLSSecretNotFound)
		if err != nil {
			return nil, "", err
		}
		if problem := hasKeys(secret, []string{key}, "CA bundle"); problem != nil {
			return nil, "", problem
		}
		return secret.Data[key], g.referenced("Secret", secret), nil
	}
	cm := &corev1.ConfigMap{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", &inputProblem{tokensv1alpha1.ReasonTLSSecretNotFound,
				fmt.Sprintf("CA bundle ConfigMap %s/%s not found", namespace, ref.Name)}
		}
		return nil, "", err
	}
	bundle := []byte(cm.Data[key])
	if len(bundle) == 0 {
		bundle = cm.BinaryData[key]
	}
	if len(bundle) == 0 {
		return nil, "", &inputProblem{tokensv1alpha1.ReasonCredentialsKeyMissing,
			fmt.Sprintf("no key %q in CA bundle ConfigMap %s/%s", key, namespace, ref.Name)}
	}
	return bundle, g.referenced("ConfigMap", cm), nil
}

// getOwnedSecret skips the apiserver read of a Secret the operator would own when nothing
// says it exists and both metadata caches know no Secret of that name: the resource never had
// a token (its first issue then reads only its credentials), or its last status recorded no
// such Secret (recordedAbsent: status.observed, written after every act) and this process has
// not written one since. The second spares each renewal of a token without a refresh token
// the read of a refresh-token Secret that never exists: one of five apiserver requests per
// renewal (make bench, steady). Should a cache lag, the create that follows fails with
// AlreadyExists and is retried on a fresh read.
func (r *BankTokenRequestReconciler) getOwnedSecret(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, name string, recordedAbsent bool) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: btr.Namespace, Name: name}
	neverWritten := btr.Status.IssuedAt == nil || (recordedAbsent && r.ownWrites.latest(key) == "")
	if neverWritten && r.secretKnownAbsent(ctx, btr.Namespace, name) {
		return nil, nil
	}
	return r.getSecret(ctx, btr.Namespace, name)
}

// secretKnownAbsent reports whether both metadata caches, the owned Secrets' and the
// namespace's other Secrets', are synced and hold no Secret of that name.
func (r *BankTokenRequestReconciler) secretKnownAbsent(ctx context.Context, namespace, name string) bool {
	if r.ownedSecrets == nil || r.references == nil || r.Shard.Enabled() {
		// A shard's cache holds only the Secrets labelled with its name: a request that just
		// moved here may own Secrets still labelled with the shard it came from.
		return false
	}
	cached := ownedSecretMetadata()
	if err := r.ownedSecrets.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, cached); !apierrors.IsNotFound(err) {
		return false
	}
	return r.references.SecretKnownAbsent(namespace, name)
}

// getSecret reads a Secret from the apiserver; a missing Secret is (nil, nil).
func (r *BankTokenRequestReconciler) getSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	secret := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading Secret %s/%s: %w", namespace, name, err)
	}
	return secret, nil
}
