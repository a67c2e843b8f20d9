package install

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// servedKind is what kubectl must find once a CRD is installed: the resource, its scope and
// its short name.
type servedKind struct {
	kind, resource, shortName string
	namespaced                bool
}

// operatorKinds are the kinds the operator's API has; each is installed by every way to
// install the operator.
var operatorKinds = []servedKind{
	{"BankTokenRequest", "banktokenrequests", "btr", true},
	{tokensv1alpha1.KindBankConnection, "bankconnections", "bconn", true},
	{tokensv1alpha1.KindClusterBankConnection, "clusterbankconnections", "cbconn", false},
}

// generatedCRDs are the CRDs make manifests writes to config/crd/bases.
func generatedCRDs(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot, "config", "crd", "bases", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crds []*unstructured.Unstructured
	for _, file := range files {
		crds = append(crds, decodeObjects(t, readRepoFile(t, filepath.Join("config", "crd", "bases", filepath.Base(file))))...)
	}
	if len(crds) != len(operatorKinds) {
		t.Fatalf("config/crd/bases holds %d CRDs, the API %d kinds", len(crds), len(operatorKinds))
	}
	return crds
}

func TestInstallYAMLShipsEveryGeneratedCRD(t *testing.T) {
	var shipped []string
	for _, crd := range objectsOfKind(decodeObjects(t, readRepoFile(t, "dist/install.yaml")), "CustomResourceDefinition") {
		shipped = append(shipped, crd.GetName())
	}
	for _, crd := range generatedCRDs(t) {
		if !slices.Contains(shipped, crd.GetName()) {
			t.Errorf("dist/install.yaml lacks the CRD %s: list it in config/crd/kustomization.yaml and run make build-installer", crd.GetName())
		}
	}
}

// Installing dist/install.yaml registers every kind with the apiserver, with the scope and
// short name kubectl users type.
func TestInstallYAMLRegistersEveryKind(t *testing.T) {
	var crds []*unstructured.Unstructured
	for _, o := range decodeObjects(t, readRepoFile(t, "dist/install.yaml")) {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
		}
	}
	apiServer(t)
	applyForReal(context.Background(), t, controlPlane.running.Client, crds)

	discoveryClient, err := discovery.NewDiscoveryClientForConfig(controlPlane.running.Config)
	if err != nil {
		t.Fatal(err)
	}
	resources, err := discoveryClient.ServerResourcesForGroupVersion(tokensv1alpha1.GroupVersion.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range operatorKinds {
		i := slices.IndexFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == want.resource })
		if i < 0 {
			t.Errorf("the apiserver serves no %s after installing dist/install.yaml", want.resource)
			continue
		}
		got := resources.APIResources[i]
		if got.Kind != want.kind || got.Namespaced != want.namespaced || !slices.Contains(got.ShortNames, want.shortName) {
			t.Errorf("%s: kind %s, namespaced %t, short names %v; want %s, %t, %s",
				want.resource, got.Kind, got.Namespaced, got.ShortNames, want.kind, want.namespaced, want.shortName)
		}
		if !slices.Contains(got.Categories, "banktoken") {
			t.Errorf("%s: categories %v lack banktoken (kubectl get banktoken lists every kind)", want.resource, got.Categories)
		}
	}
}
