package harness

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestAKubeconfigStillWorksAfterTheAPIServerRestarts(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("no control plane: KUBEBUILDER_ASSETS is not set (make test sets it)")
	}
	cp, err := StartControlPlane(ControlPlaneOptions{WithoutCRD: true, RestartableAPIServer: true,
		KubeconfigPath: filepath.Join(t.TempDir(), "kubeconfig"), KubeconfigUser: "restart-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			t.Error(err)
		}
	}()
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cm := &corev1.ConfigMap{}
	cm.Name, cm.Namespace = "kept-in-etcd", "default"
	if err := c.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}

	if err := cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{}); err == nil {
		t.Fatal("the apiserver answered while stopped")
	}
	if err := cp.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(cm), &corev1.ConfigMap{}); err != nil {
		t.Errorf("after the restart, with the kubeconfig written before it: %v", err)
	}
}
