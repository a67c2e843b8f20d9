{{- /* Generated from config/rbac/role.yaml by make derived-manifests. Do not edit. */ -}}
{{- define "bank-token-operator.managerRules" }}
- apiGroups:
  - ""
  resources:
  - configmaps
  - namespaces
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
  resourceNames:
  - kubernetes
  resources:
  - services
  verbs:
  - get
- apiGroups:
  - ""
  - events.k8s.io
  resources:
  - events
  verbs:
  - create
  - patch
- apiGroups:
  - discovery.k8s.io
  resourceNames:
  - kubernetes
  resources:
  - endpointslices
  verbs:
  - get
- apiGroups:
  - tokens.banktoken.io
  resources:
  - bankconnections
  - clusterbankconnections
  verbs:
  - get
  - list
  - watch
- apiGroups:
  - tokens.banktoken.io
  resources:
  - bankconnections/status
  - banktokenrequests/status
  - clusterbankconnections/status
  verbs:
  - get
  - patch
  - update
- apiGroups:
  - tokens.banktoken.io
  resources:
  - banktokenrequests
  verbs:
  - create
  - delete
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
{{- end }}
