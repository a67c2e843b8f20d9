package install

import (
	"cmp"
	"context"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// The samples are what a platform team copies first: config/samples builds with kustomize
// into every sample file, and the apiserver (the CRDs' schemas and CEL rules) accepts them.

const (
	samplesDir = "config/samples"
	// samplesNamespace is where the namespaced samples are tried; it carries the label the
	// sample ClusterBankConnection admits.
	samplesNamespace = "samples"
)

func TestSamplesKustomizationHoldsEverySampleFile(t *testing.T) {
	built := objectKeys(decodeObjects(t, kustomizeBuild(t, samplesDir)))
	var files []*unstructured.Unstructured
	for _, file := range sampleFiles(t) {
		files = append(files, decodeObjects(t, readRepoFile(t, file))...)
	}
	if want := objectKeys(files); !slices.Equal(built, want) {
		t.Fatalf("kustomize build %s differs from its files: list each in a kustomization.yaml\nbuilt: %v\nfiles: %v", samplesDir, built, want)
	}
}

func TestSamplesAreAcceptedByServerSideDryRun(t *testing.T) {
	ctx := context.Background()
	c := apiServer(t)
	applyForReal(ctx, t, c, generatedCRDs(t))
	ensureNamespace(ctx, t, c, samplesNamespace, map[string]string{"open-banking": "enabled"})
	samples := samplesInNamespace(t)
	for _, err := range dryRunApply(ctx, c, samples) {
		t.Error(err)
	}

	// The dry-run must be able to fail: a field the schema lacks is refused.
	unknown := samples[0].DeepCopy()
	must(t, unstructured.SetNestedField(unknown.Object, "yes", "spec", "notAField"))
	if errs := dryRunApply(ctx, c, []*unstructured.Unstructured{unknown}); len(errs) == 0 {
		t.Errorf("the apiserver accepted %s with an unknown field", objectKey(unknown))
	}
}

// The connection samples tell one story: a ClusterBankConnection gated by a namespace
// selector and scopes, two requests that use it within those scopes, and a namespace's own
// BankConnection with one request.
func TestConnectionSamplesUseTheirConnectionsWithinTheirGates(t *testing.T) {
	samples := decodeObjects(t, kustomizeBuild(t, samplesDir))
	connections := map[string]*unstructured.Unstructured{}
	for _, kind := range []string{tokensv1alpha1.KindBankConnection, tokensv1alpha1.KindClusterBankConnection} {
		found := objectsOfKind(samples, kind)
		if len(found) != 1 {
			t.Fatalf("want one sample %s, got %d", kind, len(found))
		}
		connections[kind] = found[0]
	}
	cluster := connections[tokensv1alpha1.KindClusterBankConnection]
	if selector, _, _ := unstructured.NestedMap(cluster.Object, "spec", "allowedNamespaces", "selector"); len(selector) == 0 {
		t.Errorf("%s admits no namespace by selector", objectKey(cluster))
	}
	users := map[string]int{}
	for _, request := range objectsOfKind(samples, "BankTokenRequest") {
		ref, found, _ := unstructured.NestedStringMap(request.Object, "spec", "connectionRef")
		if !found {
			continue
		}
		kind := cmp.Or(ref["kind"], tokensv1alpha1.KindBankConnection)
		connection, ok := connections[kind]
		if !ok || connection.GetName() != ref["name"] {
			t.Errorf("%s names %s %q, which is not a sample", objectKey(request), kind, ref["name"])
			continue
		}
		users[kind]++
		allowed, _, _ := unstructured.NestedStringSlice(connection.Object, "spec", "allowedScopes")
		scope, _, _ := unstructured.NestedString(request.Object, "spec", "scope")
		for _, value := range strings.Fields(scope) {
			if !slices.Contains(allowed, value) {
				t.Errorf("%s asks for scope %q, which %s does not allow (%v)", objectKey(request), value, objectKey(connection), allowed)
			}
		}
	}
	if users[tokensv1alpha1.KindClusterBankConnection] != 2 || users[tokensv1alpha1.KindBankConnection] != 1 {
		t.Errorf("requests by connection kind %v: want two through the ClusterBankConnection, one through the BankConnection", users)
	}
}

// sampleFiles are the YAML files under config/samples, kustomizations aside, relative to
// the repository.
func sampleFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	root := filepath.Join(repoRoot, samplesDir)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".yaml" || d.Name() == "kustomization.yaml" {
			return err
		}
		rel, err := filepath.Rel(repoRoot, path)
		files = append(files, rel)
		return err
	})
	must(t, err)
	if len(files) < 12 {
		t.Fatalf("only %d sample files under %s", len(files), samplesDir)
	}
	return files
}

// samplesInNamespace are the built samples, the namespaced ones placed in samplesNamespace.
func samplesInNamespace(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	samples := decodeObjects(t, kustomizeBuild(t, samplesDir))
	for _, sample := range samples {
		if sample.GetKind() != tokensv1alpha1.KindClusterBankConnection {
			sample.SetNamespace(samplesNamespace)
		}
	}
	return samples
}
