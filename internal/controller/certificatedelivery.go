package controller

import (
	"bytes"
	"context"
	"fmt"
	"maps"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Certificate delivery: a certificate-bound token (RFC 8705 §3) works only with the
// certificate it was obtained with, and a workload that mounts the token's Secret and the
// certificate's Secret apart sees each change on the kubelet's own schedule, up to a
// minute apart. With spec.certificateDelivery the output Secret carries the certificate
// (and, asked separately, its key) the token was obtained with, written in the same update
// as the token: the kubelet swaps a Secret volume's files in one atomic rename. A new
// certificate changes the client certificate Secret's version, which is one of the inputs
// a token is issued under (requestHash): the operator obtains a token with it at once, by
// the primary grant, and publishes the pair.

// certificateDelivery is what the output Secret carries of the client certificate. A
// shared grant's holder carries the certificate always, and the key when its connection
// allows it, so that each consumer copies the part it asked for from one Secret written in
// one update: every consumer gets the certificate its copied token is bound to.
func (r *BankTokenRequestReconciler) certificateDelivery(btr *tokensv1alpha1.BankTokenRequest, conn *resolvedConnection) tokensv1alpha1.CertificateDelivery {
	if conn != nil && r.isSharedGrantHolder(btr) {
		if btr.Spec.TLS == nil || btr.Spec.TLS.ClientCertificateSecretRef == nil {
			return tokensv1alpha1.CertificateDelivery{}
		}
		return tokensv1alpha1.CertificateDelivery{Certificate: true, PrivateKey: privateKeyDeliveryAllowed(conn)}
	}
	if d := btr.Spec.CertificateDelivery; d != nil {
		return *d
	}
	return tokensv1alpha1.CertificateDelivery{}
}

// privateKeyDeliveryAllowed: conn lets its client certificate's key be copied into a
// request's namespace. Refused unless it says Allowed.
func privateKeyDeliveryAllowed(conn *resolvedConnection) bool {
	return conn.Spec.PrivateKeyDelivery == tokensv1alpha1.PrivateKeyDeliveryAllowed
}

// checkCertificateDelivery is the problem of a request asking for what cannot be delivered:
// a certificate its client has none of, or a key its connection keeps to itself. Either is
// found before any call, and nothing is written.
func checkCertificateDelivery(btr *tokensv1alpha1.BankTokenRequest, conn *resolvedConnection) *inputProblem {
	d := btr.Spec.CertificateDelivery
	if d == nil || (!d.Certificate && !d.PrivateKey) {
		return nil
	}
	if btr.Spec.TLS == nil || btr.Spec.TLS.ClientCertificateSecretRef == nil {
		where := "the request"
		if conn != nil {
			where = "connection " + conn.String()
		}
		return &inputProblem{tokensv1alpha1.ReasonNoClientCertificate, fmt.Sprintf(
			"certificateDelivery asks for the client certificate, and %s names none (tls.clientCertificateSecretRef)", where)}
	}
	if d.PrivateKey && conn != nil && !privateKeyDeliveryAllowed(conn) {
		return &inputProblem{tokensv1alpha1.ReasonPrivateKeyDeliveryRefused, fmt.Sprintf(
			"certificateDelivery.privateKey asks for the client certificate's private key, and connection %s does not allow "+
				"it to leave its Secrets namespace (privateKeyDelivery: Allowed); ask for the certificate only, or have the "+
				"connection's owner allow it", conn)}
	}
	return nil
}

// withCertificateDelivery is data (not modified) with the client certificate keys as d
// asks: tls.crt from material, tls.key beside it when asked, and neither otherwise, so that
// a delivery turned off takes them away.
func withCertificateDelivery(data map[string][]byte, d tokensv1alpha1.CertificateDelivery, material providers.TLSMaterial) map[string][]byte {
	out := maps.Clone(data)
	delete(out, tokensv1alpha1.SecretKeyClientCertificate)
	delete(out, tokensv1alpha1.SecretKeyClientKey)
	if d.Certificate && len(material.ClientCertificate) > 0 {
		out[tokensv1alpha1.SecretKeyClientCertificate] = bytes.Clone(material.ClientCertificate)
		if d.PrivateKey && !material.ClientKey.IsZero() {
			out[tokensv1alpha1.SecretKeyClientKey] = []byte(material.ClientKey.Reveal())
		}
	}
	return out
}

// copiedCertificateDelivery is a consumer's copy of its holder's output Secret data (not
// modified), keeping of the certificate keys only those the consumer asked for.
func copiedCertificateDelivery(holderData map[string][]byte, d *tokensv1alpha1.CertificateDelivery) map[string][]byte {
	out := maps.Clone(holderData)
	if d == nil || !d.Certificate {
		delete(out, tokensv1alpha1.SecretKeyClientCertificate)
	}
	if d == nil || !d.Certificate || !d.PrivateKey {
		delete(out, tokensv1alpha1.SecretKeyClientKey)
	}
	return out
}

// sameData: two Secrets' data hold the same keys and values.
func sameData(a, b map[string][]byte) bool { return maps.EqualFunc(a, b, bytes.Equal) }

// withdrawRefusedPrivateKey takes the client certificate's key out of the output Secret
// of a request whose connection no longer allows its delivery (problem is
// PrivateKeyDeliveryRefused), keeping the token and the certificate: a key delivered
// before the connection's owner changed their mind does not stay in the tenant's namespace.
func (r *BankTokenRequestReconciler) withdrawRefusedPrivateKey(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, problem *inputProblem) error {
	secret := g.OutputSecret
	if problem == nil || problem.Reason != tokensv1alpha1.ReasonPrivateKeyDeliveryRefused || secret == nil ||
		len(secret.Data[tokensv1alpha1.SecretKeyClientKey]) == 0 {
		return nil
	}
	data := maps.Clone(secret.Data)
	delete(data, tokensv1alpha1.SecretKeyClientKey)
	annotations := tokenAnnotations(secret)
	if g.Held != nil {
		// Still the operator's own token: it stays recognisable as such.
		annotations[annotationChecksum] = dataChecksum(data)
	}
	if holder, ok := secret.Annotations[annotationSharedGrant]; ok {
		annotations[annotationSharedGrant] = holder
	}
	return r.writeOutputSecret(ctx, btr, g, data, annotations)
}
