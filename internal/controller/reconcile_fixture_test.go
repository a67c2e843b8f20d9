package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/tokencalls"
)

// The reconcile unit tests run the real Reconcile on controller-runtime's fake client, a
// fake clock and a scripted bank: policies, the retry gate, expiry, backoff and the refresh
// protocol are exercised in microseconds, and time passes only when a test steps the clock.

// scriptedBank answers token calls: with the next scripted failure if any, otherwise with
// a fresh access token (and a rotated refresh token when rotate is set).
type scriptedBank struct {
	clock    *clocktesting.FakeClock
	lifetime time.Duration
	rotate   bool
	failures []error
	calls    []providers.Request
	issued   int
	// cancelled counts calls that arrived with their context already cancelled.
	cancelled int
	// revokeOnRefresh: a refresh revokes the access token issued with the refresh token it
	// spends, as Django OAuth Toolkit does. issuedWith maps a refresh token to that access
	// token; revoked and spent record what no longer works.
	revokeOnRefresh bool
	issuedWith      map[string]string
	revoked, spent  map[string]bool
	// revocations are the RFC 7009 calls, as "<endpoint> <token>"; revocationFailures
	// scripts their next answers; revocationDeadlines are the calls' context deadlines.
	revocations         []string
	revocationFailures  []error
	revocationDeadlines []time.Time
	// spentSentAgain counts revocations of a refresh token already spent by a refresh: a
	// one-time credential sent a second time.
	spentSentAgain int
	// refuseRefresh: every refresh is refused with invalid_grant, though the primary grant
	// keeps issuing refresh tokens (a gateway RAKBANK's can be).
	refuseRefresh bool
	// noRefreshTokens: the primary grant brings no refresh token, as a client credentials
	// grant should not (RFC 6749 4.4.3).
	noRefreshTokens bool
}

// Revoke is an RFC 7009 endpoint with Django OAuth Toolkit's semantics: revoking a refresh
// token revokes the access token issued with it.
func (b *scriptedBank) Revoke(ctx context.Context, req providers.Request, endpoint string, refreshToken providers.Secret) error {
	deadline, _ := ctx.Deadline()
	b.revocationDeadlines = append(b.revocationDeadlines, deadline)
	if b.spent[refreshToken.Reveal()] {
		b.spentSentAgain++
	}
	b.revocations = append(b.revocations, endpoint+" "+refreshToken.Reveal())
	if len(b.revocationFailures) > 0 {
		err := b.revocationFailures[0]
		b.revocationFailures = b.revocationFailures[1:]
		return err
	}
	b.spent[refreshToken.Reveal()] = true
	b.revoked[b.issuedWith[refreshToken.Reveal()]] = true
	return nil
}

func (b *scriptedBank) Fetch(ctx context.Context, req providers.Request) (*providers.Token, error) {
	b.calls = append(b.calls, req)
	if ctx.Err() != nil {
		b.cancelled++
		return nil, &providers.Error{Class: providers.ClassTransient, Reason: providers.ReasonTimeout, Message: "cancelled"}
	}
	if len(b.failures) > 0 {
		err := b.failures[0]
		b.failures = b.failures[1:]
		return nil, err
	}
	b.issued++
	if sent := req.RefreshToken.Reveal(); sent != "" && b.refuseRefresh {
		b.spent[sent] = true
		return nil, &providers.Error{Class: providers.ClassRefreshTokenRejected, Reason: providers.ReasonRefreshTokenRejected,
			StatusCode: 400, Message: "invalid_grant"}
	}
	if sent := req.RefreshToken.Reveal(); sent != "" {
		if b.spent[sent] {
			return nil, &providers.Error{Class: providers.ClassRefreshTokenRejected, Reason: providers.ReasonRefreshTokenRejected,
				StatusCode: 400, Message: "invalid_grant"}
		}
		b.spent[sent] = b.rotate
		b.revoked[b.issuedWith[sent]] = b.revokeOnRefresh
	}
	now := b.clock.Now()
	tok := &providers.Token{AccessToken: providers.Secret(fmt.Sprintf("fixture-access-%d", b.issued)),
		TokenType: "Bearer", Scope: req.Scope, IssuedAt: now, ExpiresAt: now.Add(b.lifetime)}
	if !b.noRefreshTokens && (b.rotate || req.RefreshToken.IsZero()) {
		tok.RefreshToken = providers.Secret(fmt.Sprintf("fixture-refresh-%d", b.issued))
		b.issuedWith[tok.RefreshToken.Reveal()] = tok.AccessToken.Reveal()
	}
	return tok, nil
}

// accepts says whether the bank still accepts an access token it issued.
func (b *scriptedBank) accepts(access string) bool { return access != "" && !b.revoked[access] }

// liveGrants counts the refresh tokens issued and not yet spent: the grants the bank holds.
func (b *scriptedBank) liveGrants() int {
	live := 0
	for rt := range b.issuedWith {
		if !b.spent[rt] {
			live++
		}
	}
	return live
}

// failWith scripts the next answers.
func (b *scriptedBank) failWith(errs ...error) { b.failures = append(b.failures, errs...) }

// lastGrant is the grant of the last call.
func (b *scriptedBank) lastGrant() providers.GrantType {
	if last := b.calls[len(b.calls)-1]; !last.RefreshToken.IsZero() {
		return providers.GrantRefreshToken
	}
	return providers.GrantPassword
}

func bankError(class providers.Class, reason string) *providers.Error {
	return &providers.Error{Class: class, Reason: reason, Message: "Paymob token endpoint answered: " + reason}
}

// fixture is one BankTokenRequest, its credentials Secret and a reconciler around them.
type fixture struct {
	t        *testing.T
	clock    *clocktesting.FakeClock
	bank     *scriptedBank
	client   client.Client
	recorder *events.FakeRecorder
	r        *BankTokenRequestReconciler
	key      types.NamespacedName
	// writes counts the reconciler's writes to the apiserver; failWrites makes them fail.
	writes     []string
	failWrites func(obj client.Object) error
	// staleResource, when set, is what reads of the BankTokenRequest return, as a cache that
	// has not caught up with the reconciler's own status write would.
	staleResource *tokensv1alpha1.BankTokenRequest
}

var fixtureStart = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, mutate ...func(*tokensv1alpha1.BankTokenRequest)) *fixture {
	t.Helper()
	scheme := runtime.NewScheme()
	must(t, clientgoscheme.AddToScheme(scheme))
	must(t, tokensv1alpha1.AddToScheme(scheme))
	clk := clocktesting.NewFakeClock(fixtureStart)
	btr := &tokensv1alpha1.BankTokenRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "paymob", UID: "uid-paymob", Generation: 1},
		Spec: tokensv1alpha1.BankTokenRequestSpec{
			// A plain RFC 6749 endpoint: the refresh protocol without a bank's quirks.
			BankClient: tokensv1alpha1.BankClient{
				Provider:             tokensv1alpha1.ProviderOAuth2,
				GrantType:            tokensv1alpha1.GrantType(providers.GrantPassword),
				Endpoint:             "https://paymob.example/o/token/",
				CredentialsSecretRef: tokensv1alpha1.CredentialsSecretReference{Name: "paymob-credentials"},
			},
			Scope: "read",
		},
	}
	for _, m := range mutate {
		m(btr)
	}
	f := &fixture{t: t, clock: clk, bank: &scriptedBank{clock: clk, lifetime: time.Hour, rotate: true,
		issuedWith: map[string]string{}, revoked: map[string]bool{}, spent: map[string]bool{}},
		recorder: events.NewFakeRecorder(100), key: client.ObjectKeyFromObject(btr)}
	f.client = fake.NewClientBuilder().WithScheme(scheme).
		WithObjects(btr, credentialsSecret("fixture-password")).
		WithStatusSubresource(&tokensv1alpha1.BankTokenRequest{}, &tokensv1alpha1.BankConnection{}, &tokensv1alpha1.ClusterBankConnection{}).
		WithIndex(&tokensv1alpha1.BankTokenRequest{}, connectionIndex, namedConnection).
		WithInterceptorFuncs(f.interceptWrites()).Build()
	f.r = f.newReconciler()
	return f
}

// newReconciler is a reconciler with no memory of earlier calls, as after a restart.
func (f *fixture) newReconciler() *BankTokenRequestReconciler {
	return &BankTokenRequestReconciler{Client: f.client, APIReader: f.client, Fetcher: f.bank, Revoker: f.bank, Recorder: f.recorder,
		Clock: f.clock, Settings: Settings{DefaultTokenLifetime: time.Hour, SecretPropagationDelay: DefaultSecretPropagationDelay},
		tokenCalls: &tokencalls.Slots{}}
}

func credentialsSecret(password string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "paymob-credentials"},
		Data: map[string][]byte{"client_id": []byte("fixture-client"), "client_secret": []byte("fixture-client-secret"),
			"username": []byte("fixture-user"), "password": []byte(password)}}
}

// failSecretWrites makes every write of the Secret name fail with err.
func (f *fixture) failSecretWrites(name string, err error) {
	f.failWrites = func(obj client.Object) error {
		if _, isSecret := obj.(*corev1.Secret); isSecret && obj.GetName() == name {
			return err
		}
		return nil
	}
}

// interceptWrites records every write, and fails it when failWrites says so; reads of the
// resource return staleResource when it is set.
func (f *fixture) interceptWrites() interceptor.Funcs {
	record := func(verb string, obj client.Object) error {
		if f.failWrites != nil {
			if err := f.failWrites(obj); err != nil {
				return err
			}
		}
		f.writes = append(f.writes, fmt.Sprintf("%s %T %s", verb, obj, obj.GetName()))
		return nil
	}
	return interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if btr, ok := obj.(*tokensv1alpha1.BankTokenRequest); ok && f.staleResource != nil {
				f.staleResource.DeepCopyInto(btr)
				return nil
			}
			return c.Get(ctx, key, obj, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := record("create", obj); err != nil {
				return err
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if err := record("update", obj); err != nil {
				return err
			}
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if err := record("patch", obj); err != nil {
				return err
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			if err := record("patch/"+sub, obj); err != nil {
				return err
			}
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}
}

// reconcile runs one reconcile and fails the test on an unexpected error.
func (f *fixture) reconcile() ctrl.Result {
	f.t.Helper()
	result, err := f.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: f.key})
	if err != nil {
		f.t.Fatalf("reconcile: %v", err)
	}
	return result
}

// reconcileExpectingError runs one reconcile that must return an error.
func (f *fixture) reconcileExpectingError() error {
	f.t.Helper()
	_, err := f.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: f.key})
	if err == nil {
		f.t.Fatal("reconcile returned no error")
	}
	return err
}

func (f *fixture) resource() *tokensv1alpha1.BankTokenRequest {
	f.t.Helper()
	btr := &tokensv1alpha1.BankTokenRequest{}
	must(f.t, f.client.Get(context.Background(), f.key, btr))
	return btr
}

func (f *fixture) update(mutate func(*tokensv1alpha1.BankTokenRequest)) {
	f.t.Helper()
	btr := f.resource()
	mutate(btr)
	btr.Generation++
	must(f.t, f.client.Update(context.Background(), btr))
}

func (f *fixture) secret(name string) *corev1.Secret {
	f.t.Helper()
	s := &corev1.Secret{}
	if err := f.client.Get(context.Background(), types.NamespacedName{Namespace: f.key.Namespace, Name: name}, s); err != nil {
		return nil
	}
	return s
}

func (f *fixture) accessToken() string { return string(f.secret("paymob").Data["access_token"]) }

func (f *fixture) refreshToken() string {
	if s := f.secret(refreshSecretName(f.resource())); s != nil {
		return string(s.Data[refreshTokenKey])
	}
	return ""
}

// expectReady checks the Ready condition's status and reason, and that the message holds want.
func (f *fixture) expectReady(status metav1.ConditionStatus, reason string, want ...string) {
	f.t.Helper()
	c := meta.FindStatusCondition(f.resource().Status.Conditions, tokensv1alpha1.ConditionReady)
	if c == nil || c.Status != status || c.Reason != reason {
		f.t.Fatalf("Ready = %+v, want %s/%s", c, status, reason)
	}
	for _, w := range want {
		if !strings.Contains(c.Message, w) {
			f.t.Errorf("Ready message %q lacks %q", c.Message, w)
		}
	}
}

func (f *fixture) expectCondition(conditionType string, present bool) {
	f.t.Helper()
	if got := meta.IsStatusConditionTrue(f.resource().Status.Conditions, conditionType); got != present {
		f.t.Errorf("%s present = %v, want %v", conditionType, got, present)
	}
}

func (f *fixture) expectCalls(n int) {
	f.t.Helper()
	if len(f.bank.calls) != n {
		f.t.Fatalf("bank calls = %d, want %d", len(f.bank.calls), n)
	}
}

// expectLastCall checks the number of calls so far and the grant of the last; failure
// says what went wrong.
func (f *fixture) expectLastCall(calls int, grant providers.GrantType, failure string) {
	f.t.Helper()
	f.expectCalls(calls)
	if f.bank.lastGrant() != grant {
		f.t.Fatal(failure)
	}
}

// events drains the recorded event reasons.
func (f *fixture) events() []string {
	var reasons []string
	for {
		select {
		case e := <-f.recorder.Events:
			reasons = append(reasons, strings.Fields(e)[1])
		default:
			return reasons
		}
	}
}

// issue reconciles a new resource to its first token.
func (f *fixture) issue() {
	f.t.Helper()
	f.reconcile()
	f.expectCalls(1)
	f.expectReady(metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued)
}

// renewAnswering issues a first token, then reconciles at its renewal time with the bank
// answering failures first.
func (f *fixture) renewAnswering(failures ...error) ctrl.Result {
	f.t.Helper()
	f.issue()
	f.stepToRenewal()
	f.bank.failWith(failures...)
	return f.reconcile()
}

// stepToRenewal moves the clock to the renewal time in status.
func (f *fixture) stepToRenewal() {
	f.clock.SetTime(f.resource().Status.RenewalTime.Time)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
