package v1alpha1_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/banktoken/bank-token-operator/internal/harness"
)

// These tests run the CRD's schema and CEL rules in a real kube-apiserver: the rules are
// only as good as what the apiserver makes of them.

var (
	controlPlane *harness.ControlPlane
	k8sClient    client.Client
	ctx          context.Context
	cancel       context.CancelFunc
	namespace    = "api-validation"
)

func TestAPIValidation(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "BankTokenRequest API validation")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	controlPlane, err = harness.StartControlPlane(harness.ControlPlaneOptions{})
	Expect(err).NotTo(HaveOccurred())
	k8sClient = controlPlane.Client
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
})

var _ = AfterSuite(func() {
	cancel()
	if controlPlane != nil {
		Expect(controlPlane.Stop()).To(Succeed())
	}
})
