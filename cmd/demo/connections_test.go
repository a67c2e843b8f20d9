package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

// healthyView is the shared connection scene as it should end: team-a and team-b hold
// tokens the bank accepts, team-c is refused, and every call is one of their tokens.
func healthyView() sharedView {
	admitted := func(t tenant) tenantRow {
		return tenantRow{tenant: t, ready: "True", reason: "TokenIssued", writes: 3, tokenHash: "1a2b3c4d", tokenValid: true}
	}
	return sharedView{
		rows: []tenantRow{admitted(tenants[0]), admitted(tenants[1]), {tenant: tenants[2], ready: "False",
			reason: tokensv1alpha1.ReasonNamespaceNotAdmitted, stalled: tokensv1alpha1.ReasonNamespaceNotAdmitted,
			message: "ClusterBankConnection rakbank-shared does not admit namespace team-c"}},
		bankCalls: 6, bankAccepted: 6,
	}
}

func TestJudgeSharedPassesTheSceneAsItShouldEnd(t *testing.T) {
	for _, c := range judgeShared(healthyView()) {
		if !c.ok {
			t.Errorf("failed: %s", c.text)
		}
	}
	if got := len(judgeShared(healthyView())); got != len(tenants)+1 {
		t.Errorf("%d checks, want one per tenant and the bank's calls", got)
	}
}

func TestJudgeSharedFailsEachWayTheSceneCanGoWrong(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(v *sharedView)
		// failing is the check that must fail: a tenant's namespace, or "bank".
		failing string
	}{
		{"an admitted request is not Ready", func(v *sharedView) { v.rows[0].ready, v.rows[0].reason = "False", "ServerError" }, "team-a"},
		{"an admitted request has no token", func(v *sharedView) { v.rows[1].tokenHash = "" }, "team-b"},
		{"the bank refuses an admitted request's token", func(v *sharedView) { v.rows[1].tokenValid = false }, "team-b"},
		{"the refused request holds a token", func(v *sharedView) { v.rows[2].tokenHash = "5e6f7a8b" }, "team-c"},
		{"a token was written for the refused request", func(v *sharedView) { v.rows[2].writes = 1 }, "team-c"},
		{"the refused request is refused for another reason", func(v *sharedView) {
			v.rows[2].stalled, v.rows[2].reason = tokensv1alpha1.ReasonScopeNotAdmitted, tokensv1alpha1.ReasonScopeNotAdmitted
		}, "team-c"},
		{"the refused request is not stalled", func(v *sharedView) { v.rows[2].stalled = "" }, "team-c"},
		// A call the admitted requests' tokens do not account for: the refused one's.
		{"the bank saw a call no admitted token accounts for", func(v *sharedView) { v.bankCalls, v.bankAccepted = 7, 7 }, "bank"},
		{"the bank refused a call", func(v *sharedView) { v.bankCalls = 7 }, "bank"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := healthyView()
			tc.spoil(&v)
			for _, c := range judgeShared(v) {
				want := strings.HasPrefix(c.text, tc.failing+"/") || (tc.failing == "bank" && strings.Contains(c.text, "saw"))
				if c.ok == want {
					t.Errorf("ok=%v: %s", c.ok, c.text)
				}
			}
		})
	}
}

func TestJudgeSecretHolders(t *testing.T) {
	where := operatorNamespace + "/" + sharedCredentialsName
	for _, tc := range []struct {
		name    string
		holders []string
		ok      bool
	}{
		{"only in the operator's namespace", []string{where}, true},
		{"copied into a tenant's namespace", []string{where, "team-b/payments-token"}, false},
		{"found nowhere: the scan cannot be trusted", nil, false},
	} {
		c := judgeSecretHolders(secretScan{scanned: 5, holders: tc.holders})
		if c.ok != tc.ok {
			t.Errorf("%s: ok=%v: %s", tc.name, c.ok, c.text)
		}
		if !c.ok && len(tc.holders) > 1 && !strings.Contains(c.text, "team-b/payments-token") {
			t.Errorf("%s: the line does not name the Secret: %s", tc.name, c.text)
		}
	}
}

func TestSecretsHoldingFindsTheValueAnywhereInAnyKey(t *testing.T) {
	secret := []byte("demo-platform-0123456789abcdef")
	secrets := []corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "accounts-token"}, Data: map[string][]byte{"access_token": []byte("at")}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "copied"}, Data: map[string][]byte{
			"a": []byte("x"), "config.json": append(append([]byte(`{"secret":"`), secret...), `"}`...)}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "team-c", Name: "other"}, Data: map[string][]byte{"v": secret[:10]}},
	}
	if got := secretsHolding(secrets, secret); !slices.Equal(got, []string{"team-a/copied"}) {
		t.Errorf("got %v, want [team-a/copied]", got)
	}
}

// The connection's selector admits team-a and team-b and not team-c, and every tenant asks
// for a scope the connection allows and the sandbox bank grants: team-c is refused for its
// namespace alone.
func TestTheConnectionAdmitsTheAdmittedTenantsOnly(t *testing.T) {
	bank, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bank.Close()
	d := &demo{bank: bank, shared: &sharedConnection{clientSecret: "x"}}
	conn := d.sharedConnectionObject()
	selector, err := metav1.LabelSelectorAsSelector(conn.Spec.AllowedNamespaces.Selector)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range tenants {
		if got := selector.Matches(labels.Set(tenantNamespace(tn).Labels)); got != tn.admitted {
			t.Errorf("%s: admitted %v, want %v", tn.namespace, got, tn.admitted)
		}
		btr := tenantRequest(tn)
		if !slices.Contains(conn.Spec.AllowedScopes, btr.Spec.Scope) || !scopeWithin(btr.Spec.Scope, bank.Credentials(sharedBank).Scope) {
			t.Errorf("%s: scope %q not allowed by the connection or the bank", tn, btr.Spec.Scope)
		}
		if btr.Spec.ConnectionRef.Kind != tokensv1alpha1.KindClusterBankConnection || btr.Spec.ConnectionRef.Name != conn.Name {
			t.Errorf("%s: connectionRef %+v", tn, btr.Spec.ConnectionRef)
		}
	}
	if conn.Spec.Endpoint != bank.TokenURL(sharedBank) {
		t.Errorf("endpoint %s", conn.Spec.Endpoint)
	}
}

func TestSharedTableFitsIn110Columns(t *testing.T) {
	v := healthyView()
	v.rows[2].message = strings.Repeat("a rule the refusal names at length ", 8)
	lines := sharedTableLines(v, time.Now())
	for _, l := range lines {
		if n := len([]rune(l)); n > 110 {
			t.Errorf("%d columns: %q", n, l)
		}
	}
	table := strings.Join(lines, "\n")
	for _, want := range []string{"team-c/accounts", tokensv1alpha1.ReasonNamespaceNotAdmitted, "team-c 0", sharedConnectionName} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
}

func TestWrap(t *testing.T) {
	got := wrap("one two three four", 9, "  ")
	if want := []string{"one two", "  three", "  four"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
