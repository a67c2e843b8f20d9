package install

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	internalcontroller "github.com/banktoken/bank-token-operator/internal/controller"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
	"github.com/banktoken/bank-token-operator/internal/sharding"
)

// The shipped RBAC is shown to be enough, and no more than needed, by running the real
// reconciler as the operator's ServiceAccount (impersonated) with exactly the ClusterRole
// from dist/install.yaml; the statuses it writes are then judged by the Argo CD health check.

const managerServiceAccount = "system:serviceaccount:" + operatorNamespace + ":bank-token-operator-controller-manager"

func TestShippedRBACIssuesATokenEndToEndAndArgoCDReadsTheRealStatus(t *testing.T) {
	env := startOperatorAsServiceAccount(t)
	health := readArgoCDScript(t, "health.lua")

	healthy := env.apply(t, "healthy", providers.Banfico, nil)
	got := env.waitForReady(t, healthy, metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
	assertArgoCDHealth(t, health, got, "Healthy", "TokenIssued")

	missing := env.apply(t, "credentials-missing", providers.Banfico, func(b *tokensv1alpha1.BankTokenRequest) {
		b.Spec.CredentialsSecretRef.Name = "not-there"
	})
	got = env.waitForReady(t, missing, metav1.ConditionFalse, tokensv1alpha1.ReasonCredentialsSecretNotFound)
	assertArgoCDHealth(t, health, got, "Degraded", "CredentialsSecretNotFound")

	env.bank.SetLifetime(providers.RAKBank, time.Minute)
	failing := env.apply(t, "refresh-failing", providers.RAKBank, func(b *tokensv1alpha1.BankTokenRequest) {
		b.Spec.RenewBefore = &metav1.Duration{Duration: 58 * time.Second}
	})
	env.waitForReady(t, failing, metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
	env.bank.SetUnavailable(providers.RAKBank, true)
	got = env.waitForReady(t, failing, metav1.ConditionTrue, tokensv1alpha1.ReasonRefreshFailing)
	env.bank.SetUnavailable(providers.RAKBank, false)
	assertArgoCDHealth(t, health, got, "Healthy", "RefreshFailing")
}

func TestRBACWithoutSecretCreateFailsForThatReason(t *testing.T) {
	env := startOperatorAsServiceAccount(t)
	env.withoutPermission(t, "", "secrets", "create")

	btr := env.apply(t, "no-secret-create", providers.Banfico, nil)
	got := env.waitForReady(t, btr, metav1.ConditionFalse, tokensv1alpha1.ReasonInternalError)
	message := meta.FindStatusCondition(got.Status.Conditions, "Ready").Message
	if !strings.Contains(message, `cannot create resource "secrets"`) {
		t.Fatalf("Ready message does not name the missing permission: %s", message)
	}
	assertArgoCDHealth(t, readArgoCDScript(t, "health.lua"), got, "Degraded", "InternalError")
}

type operatorEnv struct {
	client    client.Client
	bank      *sandbox.Server
	namespace string
	role      *rbacv1.ClusterRole
}

// startOperatorAsServiceAccount installs the CRD, the namespace, the ServiceAccount and the
// manager's ClusterRole and binding from dist/install.yaml for real, then runs a manager whose
// every request impersonates that ServiceAccount.
func startOperatorAsServiceAccount(t *testing.T) *operatorEnv {
	t.Helper()
	ctx := context.Background()
	installShippedRBAC(t)

	c := controlPlane.running.Client
	role := &rbacv1.ClusterRole{}
	must(t, c.Get(ctx, client.ObjectKey{Name: "bank-token-operator-manager-role"}, role))
	original := role.DeepCopy()
	t.Cleanup(func() {
		current := &rbacv1.ClusterRole{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(original), current); err == nil {
			current.Rules = original.Rules
			_ = c.Update(ctx, current)
		}
	})

	bank, err := sandbox.Start(sandbox.Options{})
	must(t, err)
	t.Cleanup(bank.Close)

	impersonating := rest.CopyConfig(controlPlane.running.Config)
	impersonating.Impersonate = rest.ImpersonationConfig{UserName: managerServiceAccount}
	options := internalcontroller.ManagerOptions(c.Scheme(), nil, sharding.Shard{})
	options.Metrics = metricsserver.Options{BindAddress: "0"}
	mgr, err := ctrl.NewManager(impersonating, options)
	must(t, err)
	// The sandbox banks listen on loopback; the apiserver's addresses are read as the
	// ServiceAccount, which the shipped RBAC allows.
	guard, err := providers.NewEndpointGuard(providers.EndpointRules{AllowLoopback: true})
	must(t, err)
	must(t, internalcontroller.GuardAPIServerAddresses(ctx, mgr, guard))
	r := internalcontroller.NewReconciler(mgr, providers.NewClient(providers.ClientOptions{Timeout: 5 * time.Second, Guard: guard}))
	// The refresh-failing case renews a minute-long token after 2 s, below the production floor.
	r.MinRenewalInterval = time.Second
	skip := true
	must(t, r.SetupWithManager(ctx, mgr, controller.Options{SkipNameValidation: &skip}))
	mgrCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})

	namespace := fmt.Sprintf("rbac-e2e-%d", time.Now().UnixNano()%1_000_000)
	must(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}))
	return &operatorEnv{client: c, bank: bank, namespace: namespace, role: role}
}

// installShippedRBAC installs the CRD, the namespace, the ServiceAccount and the manager's
// ClusterRole and binding from dist/install.yaml for real.
func installShippedRBAC(t *testing.T) {
	t.Helper()
	admin := apiServer(t)
	var install []*unstructured.Unstructured
	for _, o := range decodeObjects(t, readRepoFile(t, "dist/install.yaml")) {
		switch o.GetKind() {
		case "CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
			install = append(install, o)
		}
	}
	applyForReal(context.Background(), t, admin, install)
}

// withoutPermission removes one verb from the manager's ClusterRole for the rest of the test.
func (e *operatorEnv) withoutPermission(t *testing.T, group, resource, verb string) {
	t.Helper()
	role := &rbacv1.ClusterRole{}
	must(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(e.role), role))
	removed := false
	for i, rule := range role.Rules {
		if slices.Contains(rule.APIGroups, group) && slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, verb) {
			role.Rules[i].Verbs = slices.DeleteFunc(slices.Clone(rule.Verbs), func(v string) bool { return v == verb })
			removed = true
		}
	}
	if !removed {
		t.Fatalf("the shipped ClusterRole does not grant %s on %s: nothing to remove", verb, resource)
	}
	must(t, e.client.Update(context.Background(), role))
	time.Sleep(500 * time.Millisecond) // the authorizer follows RBAC through an informer
}

func (e *operatorEnv) apply(t *testing.T, name string, bankName providers.Name, mutate func(*tokensv1alpha1.BankTokenRequest)) *tokensv1alpha1.BankTokenRequest {
	t.Helper()
	request := harness.NewSandboxRequest(e.bank, bankName, e.namespace, name)
	if mutate != nil {
		mutate(request.Request)
	}
	must(t, request.Apply(context.Background(), e.client))
	return request.Request
}

func (e *operatorEnv) waitForReady(t *testing.T, btr *tokensv1alpha1.BankTokenRequest, status metav1.ConditionStatus, reason string) *tokensv1alpha1.BankTokenRequest {
	t.Helper()
	got, err := harness.WaitForReady(context.Background(), e.client, btr, status, reason, 20*time.Second)
	must(t, err)
	return got
}

func assertArgoCDHealth(t *testing.T, script string, btr *tokensv1alpha1.BankTokenRequest, wantStatus, wantInMessage string) {
	t.Helper()
	result, ok := luaToGo(runArgoCDLua(t, script, toArgoCDObject(t, btr))).(map[string]any)
	if !ok {
		t.Fatalf("health.lua returned no table for %s", btr.Name)
	}
	if result["status"] != wantStatus || !strings.Contains(fmt.Sprint(result["message"]), wantInMessage) {
		t.Fatalf("%s: Argo CD health = %v %q, want %s with %q", btr.Name, result["status"], result["message"], wantStatus, wantInMessage)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
