{{- /* From crd-ref-docs v0.3.0's markdown templates (Apache-2.0, Elasticsearch B.V.); changed: the title and a line saying how the page is made. */ -}}
{{- define "gvList" -}}
{{- $groupVersions := . -}}

# API reference

Generated from `api/v1alpha1` by `make generate` ([crd-ref-docs](https://github.com/elastic/crd-ref-docs), templates in `hack/crd-ref-docs`); do not edit: change the Go doc comments and markers, then regenerate. `make verify` fails when this page is stale. `kubectl explain btr.spec` shows the same descriptions in a cluster.

## Packages
{{- range $groupVersions }}
- {{ markdownRenderGVLink . }}
{{- end }}

{{ range $groupVersions }}
{{ template "gvDetails" . }}
{{ end }}

{{- end -}}
