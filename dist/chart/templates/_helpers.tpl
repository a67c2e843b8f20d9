{{/* The app name: the chart name unless nameOverride is set. */}}
{{- define "bank-token-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name. Unlike most charts it does not include the release name,
so the objects are named as in dist/install.yaml; the operator is installed once per cluster.
*/}}
{{- define "bank-token-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- include "bank-token-operator.name" . }}
{{- end }}
{{- end }}

{{- define "bank-token-operator.labels" -}}
app.kubernetes.io/name: {{ include "bank-token-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The manager's pod labels and the selectors of its Deployment and metrics Service. */}}
{{- define "bank-token-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bank-token-operator.name" . }}
control-plane: controller-manager
{{- end }}

{{- define "bank-token-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-controller-manager" (include "bank-token-operator.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The watched namespaces, validated: empty means all namespaces. */}}
{{- define "bank-token-operator.watchNamespaces" -}}
{{- $seen := dict }}
{{- range .Values.watchNamespaces }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" .) }}
{{- fail (printf "watchNamespaces: %q is not a namespace name" .) }}
{{- end }}
{{- if hasKey $seen . }}
{{- fail (printf "watchNamespaces: %q is listed twice" .) }}
{{- end }}
{{- $_ := set $seen . true }}
{{- end }}
{{- join "," .Values.watchNamespaces }}
{{- end }}
