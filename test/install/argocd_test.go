package install

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

const (
	argoCDLuaDir  = "config/argocd/resource_customizations/tokens.banktoken.io/BankTokenRequest"
	healthKey     = "resource.customizations.health.tokens.banktoken.io_BankTokenRequest"
	actionsKey    = "resource.customizations.actions.tokens.banktoken.io_BankTokenRequest"
	tokenValidMsg = "token valid until 2026-11-22T10:00:00Z"
)

// The object's generation in these cases; the status either caught up with it or not.
const currentGeneration = 3

func TestArgoCDHealthOfBankTokenRequest(t *testing.T) {
	script := readArgoCDScript(t, "health.lua")
	for _, tc := range []struct {
		name        string
		suspend     bool
		status      *tokensv1alpha1.BankTokenRequestStatus
		wantStatus  string
		wantMessage string
	}{{
		name:        "not reconciled yet",
		status:      nil,
		wantStatus:  "Progressing",
		wantMessage: "Waiting for the operator to reconcile",
	}, {
		name: "first token being issued",
		status: status(0,
			condition("Ready", metav1.ConditionUnknown, "Issuing", "requesting a token from the bank"),
			condition("Reconciling", metav1.ConditionTrue, "Issuing", "requesting a token from the bank")),
		wantStatus:  "Progressing",
		wantMessage: "Issuing: requesting a token from the bank",
	}, {
		name: "first token waiting for its connection's call budget",
		status: status(currentGeneration,
			condition("Ready", metav1.ConditionUnknown, "WaitingForConnectionBudget", "the token call waits for ClusterBankConnection bank-a's call budget"),
			condition("Reconciling", metav1.ConditionTrue, "WaitingForConnectionBudget", "the token call waits for ClusterBankConnection bank-a's call budget")),
		wantStatus:  "Progressing",
		wantMessage: "WaitingForConnectionBudget: the token call waits for ClusterBankConnection bank-a's call budget",
	}, {
		name: "renewal waiting for the bank's pause of its connection, the token still valid",
		status: status(currentGeneration,
			condition("Ready", metav1.ConditionTrue, "TokenIssued", tokenValidMsg),
			condition("Reconciling", metav1.ConditionTrue, "ConnectionPaused", "token calls through ClusterBankConnection bank-a are paused")),
		wantStatus:  "Healthy",
		wantMessage: "TokenIssued: " + tokenValidMsg,
	}, {
		name:        "token issued",
		status:      status(currentGeneration, condition("Ready", metav1.ConditionTrue, "TokenIssued", tokenValidMsg)),
		wantStatus:  "Healthy",
		wantMessage: "TokenIssued: " + tokenValidMsg,
	}, {
		name: "refresh failing while the token is still valid",
		status: withFailures(status(currentGeneration, condition("Ready", metav1.ConditionTrue, "RefreshFailing",
			tokenValidMsg+"; refresh failed: the token endpoint is unreachable"))),
		wantStatus:  "Healthy",
		wantMessage: "RefreshFailing: " + tokenValidMsg + "; refresh failed: the token endpoint is unreachable",
	}, {
		name: "transient failure with no valid token",
		status: withFailures(status(currentGeneration,
			condition("Ready", metav1.ConditionFalse, "EndpointUnreachable", "the token endpoint is unreachable; retrying in 40s"),
			condition("Reconciling", metav1.ConditionTrue, "EndpointUnreachable", "retrying in 40s"))),
		wantStatus:  "Degraded",
		wantMessage: "EndpointUnreachable: the token endpoint is unreachable; retrying in 40s",
	}, {
		name: "credentials Secret missing",
		status: withFailures(status(currentGeneration,
			condition("Ready", metav1.ConditionFalse, "CredentialsSecretNotFound", `Secret "paymob-credentials" not found`),
			condition("Stalled", metav1.ConditionTrue, "CredentialsSecretNotFound", `Secret "paymob-credentials" not found`))),
		wantStatus:  "Degraded",
		wantMessage: `CredentialsSecretNotFound: Secret "paymob-credentials" not found`,
	}, {
		name: "stalled on a new generation before the status caught up",
		status: func() *tokensv1alpha1.BankTokenRequestStatus {
			s := status(currentGeneration-1,
				condition("Ready", metav1.ConditionFalse, "InsecureEndpoint", "endpoint must be https"),
				condition("Stalled", metav1.ConditionTrue, "InsecureEndpoint", "endpoint must be https"))
			for i := range s.Conditions {
				s.Conditions[i].ObservedGeneration = currentGeneration
			}
			return s
		}(),
		wantStatus:  "Degraded",
		wantMessage: "InsecureEndpoint: endpoint must be https",
	}, {
		name:        "status written for an older generation",
		status:      status(currentGeneration-1, condition("Ready", metav1.ConditionTrue, "TokenIssued", tokenValidMsg)),
		wantStatus:  "Progressing",
		wantMessage: "Waiting for the operator to observe generation 3",
	}, {
		name:        "old failure, spec changed since",
		status:      status(currentGeneration-1, condition("Ready", metav1.ConditionFalse, "InvalidCredentials", "the bank rejected the client credentials")),
		wantStatus:  "Progressing",
		wantMessage: "Waiting for the operator to observe generation 3",
	}, {
		name:        "suspended with no valid token",
		suspend:     true,
		status:      status(currentGeneration, condition("Ready", metav1.ConditionFalse, "Suspended", "suspended; no valid token")),
		wantStatus:  "Suspended",
		wantMessage: "Suspended: suspended; no valid token",
	}, {
		name:        "suspended while the token is still valid",
		suspend:     true,
		status:      status(currentGeneration, condition("Ready", metav1.ConditionTrue, "TokenIssued", tokenValidMsg)),
		wantStatus:  "Healthy",
		wantMessage: "TokenIssued: " + tokenValidMsg,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			btr := bankTokenRequest(tc.suspend)
			if tc.status != nil {
				btr.Status = *tc.status
			}
			result := runArgoCDLua(t, script, toArgoCDObject(t, btr))
			table, ok := result.(*lua.LTable)
			if !ok {
				t.Fatalf("health.lua returned %s, want a table", result.Type())
			}
			gotStatus, gotMessage := lua.LVAsString(table.RawGetString("status")), lua.LVAsString(table.RawGetString("message"))
			if gotStatus != tc.wantStatus || gotMessage != tc.wantMessage {
				t.Errorf("health = %s %q, want %s %q", gotStatus, gotMessage, tc.wantStatus, tc.wantMessage)
			}
		})
	}
}

func TestArgoCDRefreshActionSetsTheRefreshAnnotationToNow(t *testing.T) {
	script := readArgoCDScript(t, "actions/refresh/action.lua")
	for name, annotations := range map[string]map[string]string{
		"no annotations yet":    nil,
		"an earlier refresh":    {tokensv1alpha1.RefreshRequestedAtAnnotation: "2026-01-01T00:00:00Z", "team": "payments"},
		"unrelated annotations": {"team": "payments"},
	} {
		t.Run(name, func(t *testing.T) {
			btr := bankTokenRequest(false)
			btr.Annotations = annotations
			before := time.Now().UTC().Truncate(time.Second)
			result := luaToGo(runArgoCDLua(t, script, toArgoCDObject(t, btr)))
			after := time.Now().UTC()

			// Read the result back the way Argo CD does (JSON), into the API type.
			data, err := yaml.Marshal(result)
			if err != nil {
				t.Fatal(err)
			}
			var refreshed tokensv1alpha1.BankTokenRequest
			if err := yaml.UnmarshalStrict(data, &refreshed); err != nil {
				t.Fatalf("the action returned something that is not a BankTokenRequest: %v\n%s", err, data)
			}
			value := refreshed.Annotations[tokensv1alpha1.RefreshRequestedAtAnnotation]
			requestedAt, err := time.Parse(time.RFC3339, value)
			if err != nil || !strings.HasSuffix(value, "Z") {
				t.Fatalf("refresh-requested-at = %q, want an RFC 3339 UTC timestamp", value)
			}
			if requestedAt.Before(before) || requestedAt.After(after) {
				t.Errorf("refresh-requested-at = %s, want the current time (between %s and %s)", value, before.Format(time.RFC3339), after.Format(time.RFC3339))
			}
			if annotations["team"] != "" && refreshed.Annotations["team"] != annotations["team"] {
				t.Errorf("the action dropped another annotation: %v", refreshed.Annotations)
			}
			if refreshed.Name != btr.Name || refreshed.Spec.Endpoint != btr.Spec.Endpoint || refreshed.Spec.CredentialsSecretRef != btr.Spec.CredentialsSecretRef {
				t.Errorf("the action changed more than the annotation: %+v", refreshed)
			}
		})
	}
}

func TestArgoCDOffersRefreshUnlessSuspended(t *testing.T) {
	script := readArgoCDScript(t, "actions/discovery.lua")
	for _, suspend := range []bool{false, true} {
		result, ok := luaToGo(runArgoCDLua(t, script, toArgoCDObject(t, bankTokenRequest(suspend)))).(map[string]any)
		if !ok {
			t.Fatalf("discovery.lua returned no table")
		}
		refresh, ok := result["refresh"].(map[string]any)
		if !ok {
			t.Fatalf("discovery.lua offers no refresh action: %v", result)
		}
		if disabled, _ := refresh["disabled"].(bool); disabled != suspend {
			t.Errorf("suspend=%t: refresh disabled=%t, want %t", suspend, disabled, suspend)
		}
	}
}

// The argocd-cm snippet users paste must carry exactly the scripts tested here.
func TestArgoCDConfigMapSnippetCarriesTheTestedScripts(t *testing.T) {
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(readRepoFile(t, "config/argocd/argocd-cm.yaml"), &cm); err != nil {
		t.Fatal(err)
	}
	const hint = "run `make argocd-cm`"
	if cm.Data[healthKey] != readArgoCDScript(t, "health.lua") {
		t.Errorf("argocd-cm.yaml %s differs from health.lua: %s", healthKey, hint)
	}
	var actions struct {
		Discovery   string `json:"discovery.lua"`
		Definitions []struct {
			Name   string `json:"name"`
			Action string `json:"action.lua"`
		} `json:"definitions"`
	}
	if err := yaml.UnmarshalStrict([]byte(cm.Data[actionsKey]), &actions); err != nil {
		t.Fatalf("argocd-cm.yaml %s: %v", actionsKey, err)
	}
	if actions.Discovery != readArgoCDScript(t, "actions/discovery.lua") {
		t.Errorf("argocd-cm.yaml discovery.lua differs from actions/discovery.lua: %s", hint)
	}
	if len(actions.Definitions) != 1 || actions.Definitions[0].Name != "refresh" ||
		actions.Definitions[0].Action != readArgoCDScript(t, "actions/refresh/action.lua") {
		t.Errorf("argocd-cm.yaml must define the refresh action as actions/refresh/action.lua: %s", hint)
	}
}

func readArgoCDScript(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, argoCDLuaDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func bankTokenRequest(suspend bool) *tokensv1alpha1.BankTokenRequest {
	return &tokensv1alpha1.BankTokenRequest{
		TypeMeta: metav1.TypeMeta{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "BankTokenRequest"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              "paymob-payouts",
			Namespace:         "payments",
			Generation:        currentGeneration,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)),
		},
		Spec: tokensv1alpha1.BankTokenRequestSpec{
			BankClient: tokensv1alpha1.BankClient{
				Provider:             tokensv1alpha1.ProviderPaymob,
				Endpoint:             "https://stagingpayouts.paymobsolutions.com/api/secure/o/token/",
				CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: "paymob-credentials"},
			},
			Suspend: suspend,
		},
	}
}

// status builds a status whose conditions were written for observedGeneration. With 0 it is the
// status of a first attempt: status.observedGeneration moves only on success, while the
// conditions already speak for the current generation.
func status(observedGeneration int64, conditions ...metav1.Condition) *tokensv1alpha1.BankTokenRequestStatus {
	for i := range conditions {
		conditions[i].ObservedGeneration = observedGeneration
		if observedGeneration == 0 {
			conditions[i].ObservedGeneration = currentGeneration
		}
	}
	return &tokensv1alpha1.BankTokenRequestStatus{ObservedGeneration: observedGeneration, Conditions: conditions}
}

func withFailures(s *tokensv1alpha1.BankTokenRequestStatus) *tokensv1alpha1.BankTokenRequestStatus {
	s.FailedAttempts = 2
	s.LastFailureTime = &metav1.Time{Time: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}
	return s
}

func condition(conditionType string, status metav1.ConditionStatus, reason, message string) metav1.Condition {
	return metav1.Condition{
		Type:               conditionType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		LastTransitionTime: metav1.NewTime(time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)),
	}
}

// toArgoCDObject turns an API object into the unstructured map Argo CD hands its Lua.
func toArgoCDObject(t *testing.T, apiObject runtime.Object) map[string]any {
	t.Helper()
	object, err := runtime.DefaultUnstructuredConverter.ToUnstructured(apiObject)
	if err != nil {
		t.Fatal(err)
	}
	return object
}

// runArgoCDLua runs a script as Argo CD runs a customization from argocd-cm: no standard
// libraries but package, base and table, an os module with only time and date, reachable
// through require("os"), the object in the global obj, a one-second limit; it returns what
// the script returned.
func runArgoCDLua(t *testing.T, script string, object map[string]any) lua.LValue {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for name, open := range map[string]lua.LGFunction{lua.LoadLibName: lua.OpenPackage, lua.BaseLibName: lua.OpenBase, lua.TabLibName: lua.OpenTable} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(open), NRet: 0, Protect: true}, lua.LString(name)); err != nil {
			t.Fatal(err)
		}
	}
	safeOS := safeOSFunctions(t)
	L.PreloadModule(lua.OsLibName, func(L *lua.LState) int {
		L.Push(L.SetFuncs(L.NewTable(), safeOS))
		return 1
	})
	ctx, cancel := contextWithTimeout(time.Second)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", goToLua(L, object))
	if err := L.DoString(script); err != nil {
		t.Fatalf("the script failed: %v", err)
	}
	return L.Get(-1)
}

// safeOSFunctions are gopher-lua's os.time and os.date, the two Argo CD copies into its safe os.
func safeOSFunctions(t *testing.T) map[string]lua.LGFunction {
	t.Helper()
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	if err := L.CallByParam(lua.P{Fn: L.NewFunction(lua.OpenOs), NRet: 1, Protect: true}, lua.LString(lua.OsLibName)); err != nil {
		t.Fatal(err)
	}
	osTable := L.Get(-1).(*lua.LTable)
	functions := map[string]lua.LGFunction{}
	for _, name := range []string{"time", "date"} {
		fn, ok := osTable.RawGetString(name).(*lua.LFunction)
		if !ok || fn.GFunction == nil {
			t.Fatalf("gopher-lua has no os.%s", name)
		}
		functions[name] = fn.GFunction
	}
	return functions
}

// goToLua converts as Argo CD's decodeValue does: numbers (int64 from the converter, float64
// from JSON) to LNumber, maps to tables, slices to arrays, anything else to nil.
func goToLua(L *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case float64, int64, int32, int:
		return lua.LNumber(reflect.ValueOf(v).Convert(reflect.TypeFor[float64]()).Float())
	case []any:
		table := L.CreateTable(len(v), 0)
		for _, item := range v {
			table.Append(goToLua(L, item))
		}
		return table
	case map[string]any:
		table := L.CreateTable(0, len(v))
		for key, item := range v {
			table.RawSetH(lua.LString(key), goToLua(L, item))
		}
		return table
	}
	return lua.LNil
}

// luaToGo converts a script's result back, as Argo CD's JSON encoding of it does.
func luaToGo(value lua.LValue) any {
	switch v := value.(type) {
	case lua.LBool:
		return bool(v)
	case lua.LString:
		return string(v)
	case lua.LNumber:
		return float64(v)
	case *lua.LTable:
		if n := v.MaxN(); n > 0 {
			array := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				array = append(array, luaToGo(v.RawGetInt(i)))
			}
			return array
		}
		object := map[string]any{}
		v.ForEach(func(key, item lua.LValue) { object[key.String()] = luaToGo(item) })
		return object
	}
	return nil
}
