{{- /* From crd-ref-docs v0.3.0's markdown templates (Apache-2.0, Elasticsearch B.V.); changed: the CEL rules' messages are listed (crd-ref-docs drops XValidation as too long to read, but the messages are what admission answers), and an enum's value table is left out when no value has a description (the Enum line lists them). */ -}}
{{- define "type" -}}
{{- $type := . -}}
{{- if markdownShouldRenderType $type -}}

#### {{ $type.Name }}

{{ if $type.IsAlias }}_Underlying type:_ _{{ markdownRenderTypeLink $type.UnderlyingType  }}_{{ end }}

{{ $type.Doc }}

{{ if $type.Validation -}}
_Validation:_
{{- range $type.Validation }}
- {{ . }}
{{- end }}
{{- end }}
{{- with index $type.Markers "kubebuilder:validation:XValidation" }}

_Rules checked at admission:_
{{- range . }}
- {{ or .Message .Rule }}
{{- end }}
{{- end }}

{{ if $type.References -}}
_Appears in:_
{{- range $type.SortedReferences }}
- {{ markdownRenderTypeLink . }}
{{- end }}
{{- end }}

{{ if $type.Members -}}
| Field | Description | Default | Validation |
| --- | --- | --- | --- |
{{ if $type.GVK -}}
| `apiVersion` _string_ | `{{ $type.GVK.Group }}/{{ $type.GVK.Version }}` | | |
| `kind` _string_ | `{{ $type.GVK.Kind }}` | | |
{{ end -}}

{{ range $type.Members -}}
| `{{ .Name  }}` _{{ markdownRenderType .Type }}_ | {{ template "type_members" . }} | {{ markdownRenderDefault .Default }} | {{ range .Validation -}} {{ markdownRenderFieldDoc . }} <br />{{ end }}{{ template "field_rules" . }} |
{{ end -}}

{{ end -}}

{{- $documented := false -}}
{{- range $type.EnumValues }}{{ if .Doc }}{{ $documented = true }}{{ end }}{{ end -}}
{{- if $documented -}}
| Field | Description |
| --- | --- |
{{ range $type.EnumValues -}}
| `{{ .Name }}` | {{ markdownRenderFieldDoc .Doc }} |
{{ end -}}
{{ end -}}


{{- end -}}
{{- end -}}

{{- /* field_rules lists a field's own CEL rules. crd-ref-docs copies a type's markers onto
the fields of that type, so rules that came with the field's type are left to the type's
own entry instead of being repeated in every row that uses it. */ -}}
{{- define "field_rules" -}}
{{- $field := . -}}
{{- if not (index $field.Type.Markers "kubebuilder:validation:XValidation") -}}
{{- range index $field.Markers "kubebuilder:validation:XValidation" -}}
Rule: {{ markdownRenderFieldDoc (or .Message .Rule) }} <br />
{{- end -}}
{{- end -}}
{{- end -}}
