package controller

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

func providersToken() providers.Token {
	return providers.Token{AccessToken: "fixture-access-token", TokenType: "Bearer", Scope: "read",
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
}

func secretWith(data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
			annotationIssuedAt: formatTime(t0), annotationChecksum: dataChecksum(data), annotationInputHash: "h"}},
		Data: data,
	}
}
