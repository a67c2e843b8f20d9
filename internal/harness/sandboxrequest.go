package harness

import (
	"cmp"
	"context"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// Names of the objects a sandbox request refers to besides its credentials Secret; one of
// each serves every request in a namespace.
const (
	CABundleConfigMapName       = "bank-ca"
	ClientCertificateSecretName = "bank-client-tls"
)

// SandboxRequest is a BankTokenRequest for one sandbox bank and the objects it refers to.
type SandboxRequest struct {
	Credentials *corev1.Secret
	CABundle    *corev1.ConfigMap
	// ClientCertificate is nil unless the bank asks for mutual TLS.
	ClientCertificate *corev1.Secret
	// AssertionKey is nil unless the client signs client assertions (sandbox.SignedJWTRealm).
	AssertionKey *corev1.Secret
	Request      *tokensv1alpha1.BankTokenRequest
}

// NewSandboxRequest builds a request named name for the sandbox bank bankName (one of
// sandbox.AllBanks): its endpoint, scope, headers, metadata and client authentication are
// the bank's, and its credentials Secret (name-credentials) holds the bank's fixture
// credentials, which are not secrets.
func NewSandboxRequest(bank *sandbox.Server, bankName providers.Name, namespace, name string) SandboxRequest {
	btr := &tokensv1alpha1.BankTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: tokensv1alpha1.BankTokenRequestSpec{
			BankClient: tokensv1alpha1.BankClient{
				Provider:             tokensv1alpha1.Provider(sandbox.ProviderOf(bankName)),
				ClientAuthentication: tokensv1alpha1.ClientAuthentication(sandbox.ClientAuthenticationOf(bankName)),
				CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: name + "-credentials"},
			},
		},
	}
	PointAtSandbox(btr, bank, CABundleConfigMapName, ClientCertificateSecretName)
	out := SandboxRequest{
		Credentials: CredentialsSecret(bank, btr),
		CABundle:    CABundleConfigMap(bank, namespace, CABundleConfigMapName),
		Request:     btr,
	}
	if btr.Spec.TLS.ClientCertificateSecretRef != nil {
		out.ClientCertificate = ClientCertificateSecret(bank, namespace, ClientCertificateSecretName)
	}
	out.AssertionKey = AssertionKeySecret(bank, btr)
	return out
}

// SandboxBank is the sandbox endpoint that serves btr: its provider's bank, or for
// PrivateKeyJWT and TLSClientAuth the FAPI endpoint that accepts only that.
func SandboxBank(btr *tokensv1alpha1.BankTokenRequest) providers.Name {
	return sandbox.BankFor(providers.Name(btr.Spec.Provider), providers.ClientAuthentication(btr.Spec.ClientAuthentication))
}

// AssertionKeySecret is the Secret btr's clientAssertion names, holding the key (and kid)
// sandbox.SignedJWTRealm holds the public key of; nil when btr signs no assertions.
func AssertionKeySecret(bank *sandbox.Server, btr *tokensv1alpha1.BankTokenRequest) *corev1.Secret {
	if btr.Spec.ClientAssertion == nil {
		return nil
	}
	ref := btr.Spec.ClientAssertion.PrivateKeySecretRef
	keyPEM, keyID := bank.ClientAssertionKey()
	return &corev1.Secret{ObjectMeta: optedIn(ref.Name, btr.Namespace), Data: map[string][]byte{
		cmp.Or(ref.Key, tokensv1alpha1.DefaultPrivateKeyKey): keyPEM,
		cmp.Or(ref.KeyIDKey, tokensv1alpha1.DefaultKeyIDKey): []byte(keyID),
	}}
}

// PointAtSandbox sets what of btr's spec the sandbox bank of its provider and client
// authentication dictates: the endpoint, scope, headers, metadata, TLS (the CA ConfigMap
// caName; the client certificate Secret clientCertName where the bank asks for one) and,
// for a client that signs assertions without naming its key's Secret, name-signing-key.
func PointAtSandbox(btr *tokensv1alpha1.BankTokenRequest, bank *sandbox.Server, caName, clientCertName string) {
	bankName := SandboxBank(btr)
	creds := bank.Credentials(bankName)
	btr.Spec.Endpoint = bank.TokenURL(bankName)
	btr.Spec.Scope = creds.Scope
	btr.Spec.Headers = nil
	for _, h := range creds.Headers {
		btr.Spec.Headers = append(btr.Spec.Headers, tokensv1alpha1.HTTPHeader{Name: h.Name, Value: h.Value})
	}
	btr.Spec.Metadata = maps.Clone(creds.Metadata)
	btr.Spec.TLS = &tokensv1alpha1.TLSConfig{CABundleRef: &tokensv1alpha1.CABundleReference{
		Kind: "ConfigMap", Name: caName, Key: tokensv1alpha1.DefaultCABundleKey}}
	if bankName == providers.RAKBankPartner || bankName == sandbox.MTLSServer {
		btr.Spec.TLS.ClientCertificateSecretRef = &tokensv1alpha1.LocalSecretReference{Name: clientCertName}
	}
	if bankName == sandbox.SignedJWTRealm && btr.Spec.ClientAssertion == nil {
		btr.Spec.ClientAssertion = &tokensv1alpha1.ClientAssertion{
			PrivateKeySecretRef: tokensv1alpha1.PrivateKeySecretReference{Name: btr.Name + "-signing-key"}}
	}
}

// CredentialsSecret is the Secret btr's credentialsSecretRef names, holding the sandbox
// bank's fixture credentials under the keys the reference asks for.
func CredentialsSecret(bank *sandbox.Server, btr *tokensv1alpha1.BankTokenRequest) *corev1.Secret {
	creds := bank.Credentials(SandboxBank(btr))
	ref := btr.Spec.CredentialsSecretRef
	data := map[string][]byte{cmp.Or(ref.ClientIDKey, tokensv1alpha1.DefaultClientIDKey): []byte(creds.ClientID)}
	if creds.ClientSecret != "" { // the FAPI endpoints' clients have none
		data[cmp.Or(ref.ClientSecretKey, tokensv1alpha1.DefaultClientSecretKey)] = []byte(creds.ClientSecret)
	}
	if creds.Username != "" {
		data[cmp.Or(ref.UsernameKey, tokensv1alpha1.DefaultUsernameKey)] = []byte(creds.Username)
		data[cmp.Or(ref.PasswordKey, tokensv1alpha1.DefaultPasswordKey)] = []byte(creds.Password)
	}
	return &corev1.Secret{ObjectMeta: optedIn(ref.Name, btr.Namespace), Data: data}
}

// optedIn is the metadata of a Secret whose values may be sent to the bank: it carries the
// opt-in label the operator asks for by default (--credentials-label-required).
func optedIn(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace,
		Labels: map[string]string{tokensv1alpha1.CredentialsLabel: tokensv1alpha1.CredentialsLabelValue}}
}

// CABundleConfigMap holds the sandbox's CA certificate, which signed its TLS certificate.
func CABundleConfigMap(bank *sandbox.Server, namespace, name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Data: map[string]string{tokensv1alpha1.DefaultCABundleKey: string(bank.CABundle())}}
}

// ClientCertificateSecret holds the client certificate the sandbox accepts for mutual TLS.
func ClientCertificateSecret(bank *sandbox.Server, namespace, name string) *corev1.Secret {
	certPEM, keyPEM := bank.ClientCertificate()
	return &corev1.Secret{ObjectMeta: optedIn(name, namespace),
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}}
}

// Apply creates or updates the objects the request refers to, then creates the request.
func (r SandboxRequest) Apply(ctx context.Context, c client.Client) error {
	for _, o := range r.supporting() {
		if err := CreateOrUpdate(ctx, c, o); err != nil {
			return err
		}
	}
	if err := c.Create(ctx, r.Request); err != nil {
		return fmt.Errorf("creating BankTokenRequest %s: %w", r.Request.Name, err)
	}
	return nil
}

func (r SandboxRequest) supporting() []client.Object {
	objects := []client.Object{r.Credentials, r.CABundle}
	if r.ClientCertificate != nil {
		objects = append(objects, r.ClientCertificate)
	}
	if r.AssertionKey != nil {
		objects = append(objects, r.AssertionKey)
	}
	return objects
}

// CreateOrUpdate creates o, or replaces the one of its name, so that a test can apply the
// same bank twice in a namespace.
func CreateOrUpdate(ctx context.Context, c client.Client, o client.Object) error {
	err := c.Create(ctx, o)
	if apierrors.IsAlreadyExists(err) {
		existing := o.DeepCopyObject().(client.Object)
		if err = c.Get(ctx, client.ObjectKeyFromObject(o), existing); err == nil {
			o.SetResourceVersion(existing.GetResourceVersion())
			err = c.Update(ctx, o)
		}
	}
	if err != nil {
		return fmt.Errorf("applying %T %s: %w", o, o.GetName(), err)
	}
	return nil
}
