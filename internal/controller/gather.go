package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
type inputProblem struct {
	Reason  string
	Message string
}

// gathered is everything a decision needs, read once per reconcile.
type gathered struct {
	Request *tokensv1alpha1.BankTokenRequest

	// Problem is set when the inputs cannot make a request; the fields below it that
	// depend on the inputs are then incomplete.
	Problem *inputProblem

	Credentials providers.Credentials
	TLS         providers.TLSMaterial
	// RequestHash fingerprints the spec fields that shape the request and the versions of
	// the referenced objects (never their values).
	RequestHash string

	OutputSecret *corev1.Secret
	// Held is the intact token in the output Secret, nil when missing or altered;
	// HeldProblem then says why.
	Held        *heldToken
	HeldProblem string

	RefreshSecret *corev1.Secret
	RefreshToken  providers.Secret
}

// gather reads the resource's inputs. Secrets and ConfigMaps are read from the apiserver,
// not a cache: the operator caches no Secret data at all. An error is returned only for
// failures to talk to the apiserver; problems with the inputs land in gathered.Problem.
func (r *BankTokenRequestReconciler) gather(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest) (*gathered, error) {
	g := &gathered{Request: btr}
	versions := []string{}

	// The Secrets the operator writes: read first, so that a conflict is reported before anything is sent.
	output, err := r.getOwnedSecret(ctx, btr, outputSecretName(btr))
	if err != nil {
		return nil, err
	}
	if output != nil && !isControlledBy(output, btr) {
		g.Problem = &inputProblem{tokensv1alpha1.ReasonSecretConflict, fmt.Sprintf(
			"Secret %s/%s exists and is not owned by this BankTokenRequest; choose another spec.secretName or delete it",
			btr.Namespace, output.Name)}
		return g, nil
	}
	g.OutputSecret = output
	g.Held, g.HeldProblem = readHeldToken(output)

	refresh, err := r.getOwnedSecret(ctx, btr, refreshSecretName(btr))
	if err != nil {
		return nil, err
	}
	if refresh != nil && !isControlledBy(refresh, btr) {
		g.Problem = &inputProblem{tokensv1alpha1.ReasonSecretConflict, fmt.Sprintf(
			"Secret %s/%s, where the refresh token is kept, exists and is not owned by this BankTokenRequest",
			btr.Namespace, refresh.Name)}
		return g, nil
	}
	g.RefreshSecret = refresh
	if refresh != nil {
		g.RefreshToken = providers.Secret(refresh.Data[refreshTokenKey])
	}

	if problem := r.checkEndpoint(btr); problem != nil {
		g.Problem = problem
		return g, nil
	}

	// Credentials.
	ref := btr.Spec.CredentialsSecretRef
	creds, err := r.getSecret(ctx, btr.Namespace, ref.Name)
	if err != nil {
		return nil, err
	}
	if creds == nil {
		g.Problem = &inputProblem{tokensv1alpha1.ReasonCredentialsSecretNotFound,
			fmt.Sprintf("credentials Secret %s/%s not found", btr.Namespace, ref.Name)}
		return g, nil
	}
	versions = append(versions, objectVersion("Secret", creds.Name, creds.UID, creds.ResourceVersion))
	keys := credentialKeys(btr)
	for _, key := range keys.required() {
		if len(creds.Data[key]) == 0 {
			g.Problem = &inputProblem{tokensv1alpha1.ReasonCredentialsKeyMissing,
				fmt.Sprintf("no key %q in credentials Secret %s/%s", key, btr.Namespace, ref.Name)}
			return g, nil
		}
	}
	g.Credentials = providers.Credentials{
		ClientID:     string(creds.Data[keys.clientID]),
		ClientSecret: providers.Secret(creds.Data[keys.clientSecret]),
		Username:     string(creds.Data[keys.username]),
		Password:     providers.Secret(creds.Data[keys.password]),
	}

	// TLS material.
	if tls := btr.Spec.TLS; tls != nil {
		if ca := tls.CABundleRef; ca != nil {
			bundle, version, problem, err := r.readCABundle(ctx, btr.Namespace, ca)
			if err != nil || problem != nil {
				g.Problem = problem
				return g, err
			}
			g.TLS.CABundle = bundle
			versions = append(versions, version)
		}
		if cc := tls.ClientCertificateSecretRef; cc != nil {
			secret, err := r.getSecret(ctx, btr.Namespace, cc.Name)
			if err != nil {
				return nil, err
			}
			if secret == nil {
				g.Problem = &inputProblem{tokensv1alpha1.ReasonTLSSecretNotFound,
					fmt.Sprintf("client certificate Secret %s/%s not found", btr.Namespace, cc.Name)}
				return g, nil
			}
			for _, key := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
				if len(secret.Data[key]) == 0 {
					g.Problem = &inputProblem{tokensv1alpha1.ReasonCredentialsKeyMissing,
						fmt.Sprintf("no key %q in client certificate Secret %s/%s", key, btr.Namespace, cc.Name)}
					return g, nil
				}
			}
			g.TLS.ClientCertificate = secret.Data[corev1.TLSCertKey]
			g.TLS.ClientKey = providers.Secret(secret.Data[corev1.TLSPrivateKeyKey])
			versions = append(versions, objectVersion("Secret", secret.Name, secret.UID, secret.ResourceVersion))
		}
	}

	g.RequestHash = requestHash(&btr.Spec, versions)
	return g, nil
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

func (r *BankTokenRequestReconciler) readCABundle(ctx context.Context, namespace string, ref *tokensv1alpha1.CABundleReference) ([]byte, string, *inputProblem, error) {
	key := ref.Key
	if key == "" {
		key = tokensv1alpha1.DefaultCABundleKey
	}
	if ref.Kind == "Secret" {
		secret, err := r.getSecret(ctx, namespace, ref.Name)
		if err != nil {
			return nil, "", nil, err
		}
		if secret == nil {
			return nil, "", &inputProblem{tokensv1alpha1.ReasonTLSSecretNotFound,
				fmt.Sprintf("CA bundle Secret %s/%s not found", namespace, ref.Name)}, nil
		}
		if len(secret.Data[key]) == 0 {
			return nil, "", &inputProblem{tokensv1alpha1.ReasonCredentialsKeyMissing,
				fmt.Sprintf("no key %q in CA bundle Secret %s/%s", key, namespace, ref.Name)}, nil
		}
		return secret.Data[key], objectVersion("Secret", secret.Name, secret.UID, secret.ResourceVersion), nil, nil
	}
	cm := &corev1.ConfigMap{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, "", &inputProblem{tokensv1alpha1.ReasonTLSSecretNotFound,
				fmt.Sprintf("CA bundle ConfigMap %s/%s not found", namespace, ref.Name)}, nil
		}
		return nil, "", nil, err
	}
	bundle := []byte(cm.Data[key])
	if len(bundle) == 0 {
		bundle = cm.BinaryData[key]
	}
	if len(bundle) == 0 {
		return nil, "", &inputProblem{tokensv1alpha1.ReasonCredentialsKeyMissing,
			fmt.Sprintf("no key %q in CA bundle ConfigMap %s/%s", key, namespace, ref.Name)}, nil
	}
	return bundle, objectVersion("ConfigMap", cm.Name, cm.UID, cm.ResourceVersion), nil, nil
}

// getOwnedSecret skips the apiserver read of a Secret the operator would own when the
// resource never had a token and neither metadata cache knows a Secret of that name: the
// first issue of a new resource then reads only its credentials. Should a cache lag, the
// create that follows fails with AlreadyExists and the next reconcile reads the Secret.
func (r *BankTokenRequestReconciler) getOwnedSecret(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, name string) (*corev1.Secret, error) {
	if btr.Status.IssuedAt == nil && r.secretKnownAbsent(ctx, btr.Namespace, name) {
		return nil, nil
	}
	return r.getSecret(ctx, btr.Namespace, name)
}

// secretKnownAbsent reports whether both metadata caches, the owned Secrets' and the
// namespace's other Secrets', are synced and hold no Secret of that name.
func (r *BankTokenRequestReconciler) secretKnownAbsent(ctx context.Context, namespace, name string) bool {
	if r.ownedSecrets == nil || r.references == nil {
		return false
	}
	cached := &metav1.PartialObjectMetadata{}
	cached.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	if err := r.ownedSecrets.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, cached); !apierrors.IsNotFound(err) {
		return false
	}
	return r.references.secretKnownAbsent(namespace, name)
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

// credentialKeyNames are the keys read from the credentials Secret.
type credentialKeyNames struct {
	clientID, clientSecret, username, password string
	passwordGrant                              bool
}

func credentialKeys(btr *tokensv1alpha1.BankTokenRequest) credentialKeyNames {
	ref := btr.Spec.CredentialsSecretRef
	orDefault := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	return credentialKeyNames{
		clientID:      orDefault(ref.ClientIDKey, tokensv1alpha1.DefaultClientIDKey),
		clientSecret:  orDefault(ref.ClientSecretKey, tokensv1alpha1.DefaultClientSecretKey),
		username:      orDefault(ref.UsernameKey, tokensv1alpha1.DefaultUsernameKey),
		password:      orDefault(ref.PasswordKey, tokensv1alpha1.DefaultPasswordKey),
		passwordGrant: primaryGrant(&btr.Spec) == providers.GrantPassword,
	}
}

func (k credentialKeyNames) required() []string {
	if k.passwordGrant {
		return []string{k.clientID, k.clientSecret, k.username, k.password}
	}
	return []string{k.clientID, k.clientSecret}
}

// primaryGrant is the grant that obtains a new token without a refresh token.
func primaryGrant(spec *tokensv1alpha1.BankTokenRequestSpec) providers.GrantType {
	if spec.GrantType != "" {
		return providers.GrantType(spec.GrantType)
	}
	if preset, ok := providers.PresetFor(providers.Name(spec.Provider)); ok {
		return preset.DefaultGrant
	}
	return providers.GrantClientCredentials
}

func objectVersion(kind, name string, uid types.UID, resourceVersion string) string {
	return kind + "/" + name + "/" + string(uid) + "/" + resourceVersion
}

// requestHash fingerprints what shapes the token request. Renewal timing, the output
// Secret's name and template, and suspend are left out: changing them needs no new token.
func requestHash(spec *tokensv1alpha1.BankTokenRequestSpec, versions []string) string {
	fingerprint := struct {
		Provider             tokensv1alpha1.Provider
		Endpoint             string
		Scope                string
		GrantType            tokensv1alpha1.GrantType
		ClientAuthentication tokensv1alpha1.ClientAuthentication
		Headers              []tokensv1alpha1.HTTPHeader
		Metadata             map[string]string
		Credentials          tokensv1alpha1.CredentialsSecretReference
		TLS                  *tokensv1alpha1.TLSConfig
		Versions             []string
	}{spec.Provider, spec.Endpoint, spec.Scope, spec.GrantType, spec.ClientAuthentication,
		spec.Headers, spec.Metadata, spec.CredentialsSecretRef, spec.TLS, versions}
	raw, _ := json.Marshal(fingerprint) // plain structs and maps: cannot fail
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}
