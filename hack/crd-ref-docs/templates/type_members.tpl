{{- /* From crd-ref-docs v0.3.0's markdown templates (Apache-2.0, Elasticsearch B.V.); changed: only an ObjectMeta field is sent to the Kubernetes documentation, not every field named metadata (spec.metadata is RAKBankPartner's oauth_metadata). */ -}}
{{- define "type_members" -}}
{{- $field := . -}}
{{- if and (eq $field.Name "metadata") (eq $field.Type.Name "ObjectMeta") -}}
Refer to Kubernetes API documentation for fields of `metadata`.
{{- else -}}
{{ markdownRenderFieldDoc $field.Doc }}
{{- end -}}
{{- end -}}
