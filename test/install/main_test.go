// Package install tests what platform teams install: dist/install.yaml, the kustomize overlays,
// the Helm chart in dist/chart and the Argo CD customizations in config/argocd. The manifests
// are checked against a real kube-apiserver (server-side dry-run, Pod Security admission);
// the Lua runs in gopher-lua the way Argo CD runs it.
package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/banktoken/bank-token-operator/internal/harness"
)

// repoRoot is where the Makefile lives; tests run in test/install.
var repoRoot = filepath.Join("..", "..")

const (
	// operatorNamespace is the namespace dist/install.yaml creates and the chart is rendered for.
	operatorNamespace = "bank-token-operator-system"
	helmRelease       = "bank-token-operator"
	chartDir          = "dist/chart"
	fieldOwner        = "install-test"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if controlPlane.running != nil {
		if err := controlPlane.running.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the control plane: %v\n", err)
		}
	}
	os.Exit(code)
}

// controlPlane is one kube-apiserver and etcd for the whole package, started on first use so
// that the tests that need none (Lua, lint, freshness) do not wait for it.
var controlPlane struct {
	once    sync.Once
	running *harness.ControlPlane
	err     error
}

// apiServer returns a client of the shared control plane. Unlike envtest's default, the
// ServiceAccount admission plugin is on, as in a real cluster: a Pod must name a
// ServiceAccount that exists, and gets its projected token volume before Pod Security
// admission judges it. PodSecurity admission is on by default in kube-apiserver.
func apiServer(t *testing.T) client.Client {
	t.Helper()
	controlPlane.once.Do(func() {
		if os.Getenv("KUBEBUILDER_ASSETS") == "" {
			controlPlane.err = errors.New("KUBEBUILDER_ASSETS is not set: run `make test`, or `make setup-envtest` and export what it prints")
			return
		}
		controlPlane.running, controlPlane.err = harness.StartControlPlane(harness.ControlPlaneOptions{
			WithoutCRD: true, AdmissionPlugins: true,
		})
	})
	if controlPlane.err != nil {
		t.Fatal(controlPlane.err)
	}
	return controlPlane.running.Client
}

// tool returns the path of a pinned tool: $ENV when set (the Makefile sets it), else ./bin/name.
func tool(t *testing.T, envVar, name string) string {
	t.Helper()
	path := os.Getenv(envVar)
	if path == "" {
		path = filepath.Join(repoRoot, "bin", name)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("%s not found at %s: run `make %s` (make test installs it)", name, abs, name)
	}
	return abs
}

// run runs a command in the repository root and returns its stdout; stderr goes in the failure.
func run(t *testing.T, command string, args ...string) []byte {
	t.Helper()
	out, err := tryRun(command, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", filepath.Base(command), strings.Join(args, " "), err)
	}
	return out
}

func tryRun(command string, args ...string) ([]byte, error) {
	cmd := exec.Command(command, args...)
	cmd.Dir = repoRoot
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%w\n%s%s", err, stderr.String(), stdout.String())
	}
	return stdout.Bytes(), nil
}

func kustomizeBuild(t *testing.T, dir string) []byte {
	t.Helper()
	return run(t, tool(t, "KUSTOMIZE", "kustomize"), "build", dir)
}

func readRepoFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// decodeObjects splits a multi-document YAML stream into objects, skipping empty documents.
func decodeObjects(t *testing.T, manifests []byte) []*unstructured.Unstructured {
	t.Helper()
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	var objects []*unstructured.Unstructured
	for {
		var object map[string]any
		if err := decoder.Decode(&object); err != nil {
			if errors.Is(err, io.EOF) {
				return objects
			}
			t.Fatalf("decoding manifests: %v", err)
		}
		if len(object) == 0 {
			continue
		}
		objects = append(objects, &unstructured.Unstructured{Object: object})
	}
}

// objectKey names an object in failure messages and object sets: Kind namespace/name.
func objectKey(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetKind() + " " + o.GetName()
	}
	return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
}

func findObject(t *testing.T, objects []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %q in the manifests", kind, name)
	return nil
}

func objectsOfKind(objects []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var found []*unstructured.Unstructured
	for _, o := range objects {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	return found
}

// applyForReal server-side applies the objects that others depend on and that a dry-run
// cannot stand in for (CRDs, Namespaces), and waits for CRDs to be established.
func applyForReal(ctx context.Context, t *testing.T, c client.Client, objects []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objects {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
			t.Fatalf("applying %s: %v", objectKey(o), err)
		}
		if o.GetKind() == "CustomResourceDefinition" {
			waitForEstablished(ctx, t, c, o.GetName())
		}
	}
}

func waitForEstablished(ctx context.Context, t *testing.T, c client.Client, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		crd := &unstructured.Unstructured{}
		crd.SetAPIVersion("apiextensions.k8s.io/v1")
		crd.SetKind("CustomResourceDefinition")
		if err := c.Get(ctx, client.ObjectKey{Name: name}, crd); err == nil {
			conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			for _, raw := range conditions {
				if cond, ok := raw.(map[string]any); ok && cond["type"] == "Established" && cond["status"] == "True" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("CRD %s not established after 30s", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dryRunApply server-side applies each object with dryRun=All, so that kube-apiserver runs
// schema validation, defaulting and admission without persisting anything. It returns one
// error per refused object.
func dryRunApply(ctx context.Context, c client.Client, objects []*unstructured.Unstructured) []error {
	var errs []error
	for _, o := range objects {
		err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.FieldOwner(fieldOwner), client.ForceOwnership, client.DryRunAll)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", objectKey(o), err))
		}
	}
	return errs
}

// installForDryRun applies the CRDs and Namespaces of a manifest set for real (plus any extra
// namespaces it expects to exist) and dry-runs everything else, failing the test on refusals.
func installForDryRun(t *testing.T, objects []*unstructured.Unstructured, existingNamespaces ...string) {
	t.Helper()
	ctx := context.Background()
	c := apiServer(t)
	var prerequisites, rest []*unstructured.Unstructured
	for _, name := range append([]string{operatorNamespace}, existingNamespaces...) {
		if !hasNamespace(objects, name) {
			ensureNamespace(ctx, t, c, name, nil)
		}
	}
	for _, o := range objects {
		switch o.GetKind() {
		case "CustomResourceDefinition", "Namespace":
			prerequisites = append(prerequisites, o)
		default:
			rest = append(rest, o)
		}
	}
	applyForReal(ctx, t, c, prerequisites)
	if len(rest) == 0 {
		t.Fatal("nothing to dry-run")
	}
	for _, err := range dryRunApply(ctx, c, rest) {
		t.Error(err)
	}
}

func hasNamespace(objects []*unstructured.Unstructured, name string) bool {
	for _, o := range objects {
		if o.GetKind() == "Namespace" && o.GetName() == name {
			return true
		}
	}
	return false
}

// ensureNamespace creates a namespace unless it exists; its labels are set only on creation.
func ensureNamespace(ctx context.Context, t *testing.T, c client.Client, name string, labels map[string]string) {
	t.Helper()
	if err := c.Create(ctx, namespaceObject(name, labels)); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

func namespaceObject(name string, labels map[string]string) *unstructured.Unstructured {
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(name)
	ns.SetLabels(labels)
	return ns
}

func isForbidden(err error) bool { return apierrors.IsForbidden(err) }

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
