package install

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/strvals"
)

// The chart is rendered and linted through Helm's own packages (helm.sh/helm/v3, the version
// the Makefile's HELM_VERSION pins) rather than the helm CLI: building the CLI on a fresh
// machine compiles a second copy of the k8s.io modules and minutes of code these tests never
// run. The functions below follow the CLI's code paths step by step (cited in each).

// helmKubeVersion is what the Makefile's helm build reports to charts (HELM_K8S_MINOR): the
// minor of the k8s.io modules helm is built with.
var helmKubeVersion = chartutil.KubeVersion{Version: "v1.37.0", Major: "1", Minor: "37"}

func helmTemplate(t *testing.T, setValues ...string) []byte {
	t.Helper()
	manifests, err := renderChart(setValues...)
	if err != nil {
		t.Fatalf("helm template %s --set %v: %v", chartDir, setValues, err)
	}
	return manifests
}

// parseSetValues merges --set arguments the way `helm template --set` does.
func parseSetValues(setValues []string) (map[string]any, error) {
	values := map[string]any{}
	for _, v := range setValues {
		if err := strvals.ParseInto(v, values); err != nil {
			return nil, fmt.Errorf("--set %s: %w", v, err)
		}
	}
	return values, nil
}

// renderChart is `helm template bank-token-operator dist/chart --namespace
// bank-token-operator-system [--set ...]`: cmd/helm/install.go (runInstall) and
// pkg/action/install.go with ClientOnly and DryRun, then pkg/action/action.go (renderResources).
func renderChart(setValues ...string) ([]byte, error) {
	values, err := parseSetValues(setValues)
	if err != nil {
		return nil, err
	}
	chrt, err := loader.Load(filepath.Join(repoRoot, chartDir))
	if err != nil {
		return nil, err
	}
	if chrt.Metadata.Type != "" && chrt.Metadata.Type != "application" {
		return nil, fmt.Errorf("%s charts are not installable", chrt.Metadata.Type)
	}
	if chrt.Metadata.Dependencies != nil {
		return nil, errors.New("the chart has dependencies: render it with the helm CLI")
	}
	if err := chartutil.ProcessDependenciesWithMerge(chrt, values); err != nil {
		return nil, err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = helmKubeVersion
	options := chartutil.ReleaseOptions{Name: helmRelease, Namespace: operatorNamespace, Revision: 1, IsInstall: true}
	renderValues, err := chartutil.ToRenderValuesWithSchemaValidation(chrt, values, options, caps, false)
	if err != nil {
		return nil, err
	}
	return renderManifests(chrt, renderValues, caps)
}

// renderManifests is pkg/action/action.go's renderResources for `helm template`: no cluster,
// no CRDs from crds/ (the chart keeps its CRD in templates/), no post-renderer.
func renderManifests(chrt *chart.Chart, values chartutil.Values, caps *chartutil.Capabilities) ([]byte, error) {
	if chrt.Metadata.KubeVersion != "" && !chartutil.IsCompatibleRange(chrt.Metadata.KubeVersion, caps.KubeVersion.String()) {
		return nil, fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", chrt.Metadata.KubeVersion, caps.KubeVersion.String())
	}
	var e engine.Engine
	files, err := e.Render(chrt, values)
	if err != nil {
		return nil, err
	}
	for name := range files {
		if path.Base(name) == "NOTES.txt" {
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for _, m := range manifests {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", m.Name, m.Content)
	}
	// `helm template` prints hooks after the manifests.
	for _, h := range hooks {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", h.Path, h.Manifest)
	}
	return out.Bytes(), nil
}

// lintChart is `helm lint --strict dist/chart [--set ...]` (pkg/action/lint.go): with
// --strict, warnings fail as errors do.
func lintChart(setValues ...string) error {
	values, err := parseSetValues(setValues)
	if err != nil {
		return err
	}
	// helm lint renders in the namespace of the kubeconfig, "default" without one.
	linter := lint.AllWithKubeVersionAndSchemaValidation(filepath.Join(repoRoot, chartDir), values, "default", &helmKubeVersion, false)
	var failures []error
	for _, msg := range linter.Messages {
		if msg.Severity >= support.WarningSev {
			failures = append(failures, msg)
		}
	}
	return errors.Join(failures...)
}
