package install

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// The health of BankConnection and ClusterBankConnection, run in gopher-lua as Argo CD runs
// it. The two kinds share their status, so they share the script: Argo CD's
// resource_customizations layout wants a file in each kind's directory, and
// ClusterBankConnection's is a link to BankConnection's.

const argoCDCustomizationsDir = "config/argocd/resource_customizations/tokens.banktoken.io"

var connectionKinds = []string{tokensv1alpha1.KindBankConnection, tokensv1alpha1.KindClusterBankConnection}

type connectionHealthCase struct {
	name        string
	status      *tokensv1alpha1.BankConnectionStatus
	wantStatus  string
	wantMessage string
}

var pausedUntil = metav1.NewTime(time.Date(2026, 11, 22, 9, 5, 0, 0, time.UTC))

var connectionHealthCases = []connectionHealthCase{{
	name:        "not reconciled yet",
	wantStatus:  "Progressing",
	wantMessage: "Waiting for the operator to reconcile",
}, {
	name: "ready",
	status: connectionStatus(currentGeneration,
		condition("CredentialsReady", metav1.ConditionTrue, "CredentialsFound", "the credentials Secret holds client_id, client_secret"),
		condition("Ready", metav1.ConditionTrue, "Ready", "serving 3 requests")),
	wantStatus:  "Healthy",
	wantMessage: "Ready: serving 3 requests",
}, {
	name: "ready, with requests refused by its gates",
	status: withRefused(2, connectionStatus(currentGeneration,
		condition("CredentialsReady", metav1.ConditionTrue, "CredentialsFound", "the credentials Secret holds client_id, client_secret"),
		condition("Ready", metav1.ConditionTrue, "Ready", "serving 3 requests"))),
	wantStatus:  "Healthy",
	wantMessage: "Ready: serving 3 requests; 2 request(s) refused: outside allowedNamespaces or allowedScopes",
}, {
	name: "credentials Secret missing",
	status: connectionStatus(currentGeneration,
		condition("CredentialsReady", metav1.ConditionFalse, "CredentialsSecretNotFound", `Secret "banfico-shared-credentials" not found`),
		condition("Ready", metav1.ConditionFalse, "CredentialsNotReady", "the credentials are not ready")),
	wantStatus:  "Degraded",
	wantMessage: `CredentialsSecretNotFound: Secret "banfico-shared-credentials" not found`,
}, {
	name: "paused by the bank",
	status: withPause(connectionStatus(currentGeneration,
		condition("CredentialsReady", metav1.ConditionTrue, "CredentialsFound", "the credentials Secret holds client_id, client_secret"),
		condition("Ready", metav1.ConditionFalse, "RateLimited", "the bank answered 429; calls resume after its Retry-After"))),
	wantStatus:  "Progressing",
	wantMessage: "Paused by the bank until 2026-11-22T09:05:00Z: RateLimited: the bank answered 429; calls resume after its Retry-After",
}, {
	name: "paused, and then its credentials Secret went missing",
	status: withPause(connectionStatus(currentGeneration,
		condition("CredentialsReady", metav1.ConditionFalse, "CredentialsSecretNotFound", `Secret "banfico-shared-credentials" not found`),
		condition("Ready", metav1.ConditionFalse, "RateLimited", "the bank answered 429"))),
	wantStatus:  "Degraded",
	wantMessage: `CredentialsSecretNotFound: Secret "banfico-shared-credentials" not found`,
}, {
	name:        "not ready for another reason",
	status:      connectionStatus(currentGeneration, condition("Ready", metav1.ConditionFalse, "EndpointRefused", "the endpoint resolves to a link-local address")),
	wantStatus:  "Degraded",
	wantMessage: "EndpointRefused: the endpoint resolves to a link-local address",
}, {
	name:        "being checked",
	status:      connectionStatus(currentGeneration, condition("Ready", metav1.ConditionUnknown, "Checking", "reading the credentials")),
	wantStatus:  "Progressing",
	wantMessage: "Checking: reading the credentials",
}, {
	name:        "status written for an older generation",
	status:      connectionStatus(currentGeneration-1, condition("Ready", metav1.ConditionTrue, "Ready", "serving 3 requests")),
	wantStatus:  "Progressing",
	wantMessage: "Waiting for the operator to observe generation 3",
}, {
	name: "old credentials failure, spec changed since",
	status: connectionStatus(currentGeneration-1,
		condition("CredentialsReady", metav1.ConditionFalse, "CredentialsSecretNotFound", `Secret "old" not found`)),
	wantStatus:  "Progressing",
	wantMessage: "Waiting for the operator to observe generation 3",
}}

func TestArgoCDHealthOfConnections(t *testing.T) {
	for _, kind := range connectionKinds {
		script := readConnectionHealthScript(t, kind)
		for _, tc := range connectionHealthCases {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				table, ok := runArgoCDLua(t, script, toArgoCDObject(t, connection(kind, tc.status))).(*lua.LTable)
				if !ok {
					t.Fatal("health.lua returned no table")
				}
				gotStatus, gotMessage := lua.LVAsString(table.RawGetString("status")), lua.LVAsString(table.RawGetString("message"))
				if gotStatus != tc.wantStatus || gotMessage != tc.wantMessage {
					t.Errorf("health = %s %q, want %s %q", gotStatus, gotMessage, tc.wantStatus, tc.wantMessage)
				}
			})
		}
	}
}

// The argocd-cm snippet users paste must carry exactly the scripts tested here.
func TestArgoCDConfigMapSnippetCarriesTheConnectionHealthScripts(t *testing.T) {
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(readRepoFile(t, "config/argocd/argocd-cm.yaml"), &cm); err != nil {
		t.Fatal(err)
	}
	for _, kind := range connectionKinds {
		key := "resource.customizations.health.tokens.banktoken.io_" + kind
		if cm.Data[key] != readConnectionHealthScript(t, kind) {
			t.Errorf("argocd-cm.yaml %s differs from %s/health.lua: run `make argocd-cm`", key, kind)
		}
	}
}

func readConnectionHealthScript(t *testing.T, kind string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, argoCDCustomizationsDir, kind, "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// connection is a connection of kind with status (none when nil), at currentGeneration.
func connection(kind string, status *tokensv1alpha1.BankConnectionStatus) runtime.Object {
	meta := metav1.ObjectMeta{Name: "banfico-shared", Generation: currentGeneration,
		CreationTimestamp: metav1.NewTime(time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC))}
	spec := tokensv1alpha1.BankConnectionSpec{BankClient: tokensv1alpha1.BankClient{
		Provider:             tokensv1alpha1.ProviderBanfico,
		Endpoint:             "https://banfico.example/auth/realms/provider/protocol/openid-connect/token",
		CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: "banfico-shared-credentials"},
	}}
	if status == nil {
		status = &tokensv1alpha1.BankConnectionStatus{}
	}
	typeMeta := metav1.TypeMeta{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: kind}
	if kind == tokensv1alpha1.KindClusterBankConnection {
		return &tokensv1alpha1.ClusterBankConnection{TypeMeta: typeMeta, ObjectMeta: meta, Spec: spec, Status: *status}
	}
	meta.Namespace = "payments"
	return &tokensv1alpha1.BankConnection{TypeMeta: typeMeta, ObjectMeta: meta, Spec: spec, Status: *status}
}

// connectionStatus is a status whose conditions were written for observedGeneration.
func connectionStatus(observedGeneration int64, conditions ...metav1.Condition) *tokensv1alpha1.BankConnectionStatus {
	for i := range conditions {
		conditions[i].ObservedGeneration = observedGeneration
	}
	return &tokensv1alpha1.BankConnectionStatus{ObservedGeneration: observedGeneration, Conditions: conditions, Requests: 3}
}

func withPause(s *tokensv1alpha1.BankConnectionStatus) *tokensv1alpha1.BankConnectionStatus {
	s.Budget = &tokensv1alpha1.CallBudgetStatus{Calls: 30, Limit: 30, Interval: metav1.Duration{Duration: time.Minute}, PausedUntil: &pausedUntil}
	return s
}

func withRefused(refused int32, s *tokensv1alpha1.BankConnectionStatus) *tokensv1alpha1.BankConnectionStatus {
	s.RefusedRequests = refused
	return s
}
