{{- /* Generated from config/rbac/role.yaml by make derived-manifests. Do not edit. */ -}}
{{- define "bank-token-operator.managerRules" }}
- apiGroups:
  - ""
  resources:
  - configmaps
  verbs:
  - get
  - list
  - watch
- apiGroups:
  - ""
  resources:
  - secrets
  verbs:
  - create
  - get
  - list
  - patch
  - update
  - watch
- apiGroups:
  - ""
  - events.k8s.io
  resources:
  - events
  verbs:
  - create
  - patch
- apiGroups:
  - tokens.banktoken.io
  resources:
  - banktokenrequests
  verbs:
  - get
  - list
  - patch
  - update
  - watch
- apiGroups:
  - tokens.banktoken.io
  resources:
  - banktokenrequests/finalizers
  verbs:
  - update
- apiGroups:
  - tokens.banktoken.io
  resources:
  - banktokenrequests/status
  verbs:
  - get
  - patch
  - update
{{- end }}
