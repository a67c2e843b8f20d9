package sharding

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
	"github.com/banktoken/bank-token-operator/internal/sharding"
)

const (
	ring = "banktokenrequests"
	// bankName rotates its refresh tokens and counts a spent one sent again.
	bankName = providers.Paymob
	// lifetime with --secret-propagation-delay=2s renews every 4 s.
	lifetime      = 6 * time.Second
	renewalPeriod = 4 * time.Second
	// answerDelay keeps each call in flight long enough for the drain to arrive during one.
	answerDelay = time.Second
	// letGoBound is how soon after its call is answered a shard lets go of a drained request:
	// at once, not at the request's next requeue.
	letGoBound = time.Second
)

var shardNames = [2]string{"shard-a", "shard-b"}

// Two shards of one ring, each assigned half the requests as the sharder's webhook assigns
// them (the shard label on create): each renews only its own. Then one request is drained
// from its shard while its renewal call is at the bank, and assigned to the other shard as
// the sharder does (the shard lets go by removing the shard and drain labels; the sharder's
// webhook labels it with the new shard): the call under way finishes and its token is
// published before the first shard lets go, the second shard renews it at its next
// renewal time and not before, no token is lost, and the bank never sees a refresh token
// twice.
func TestTwoShardsRenewOnlyTheirOwnRequestsAndAMovedRequestIsRenewedOnceLosingNoToken(t *testing.T) {
	ctx := t.Context()
	bank := startBank(t)
	shard := sharding.Shard{Ring: ring}
	// The request to be moved has a namespace of its own, so that its renewal call is not
	// held back behind the others' by the per-namespace cap while the bank holds answers.
	namespace, movedNamespace := createNamespace(t), createNamespace(t)
	assigned := map[types.NamespacedName]string{}
	for i := range 2 * *resourcesPerShard {
		ns := namespace
		if i == 0 {
			ns = movedNamespace
		}
		req := harness.NewSandboxRequest(bank, bankName, ns, fmt.Sprintf("token-%02d", i))
		assigned[client.ObjectKeyFromObject(req.Request)] = shardNames[i%2]
		req.Request.Labels = map[string]string{shard.ShardLabel(): shardNames[i%2]}
		if err := req.Apply(ctx, world.ControlPlane.Client); err != nil {
			t.Fatal(err)
		}
	}
	flags := []string{"--secret-propagation-delay=2s", "--min-renewal-interval=1s"}
	managers := map[string]*harness.ManagerProcess{}
	for _, name := range shardNames {
		managers[name] = startShard(t, ring, name, namespace, flags...)
	}
	for key := range assigned {
		btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		if _, err := harness.WaitForReady(ctx, world.ControlPlane.Client, btr, metav1.ConditionTrue, tokensv1alpha1.ReasonTokenIssued, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	checkShardLeases(t, namespace)

	moved := types.NamespacedName{Namespace: movedNamespace, Name: "token-00"}
	from, to := assigned[moved], shardNames[1]
	watch := watchToken(t, bank, moved)
	time.Sleep(time.Duration(*rounds) * renewalPeriod)
	// Only around the drain: held answers would slow every shard's renewals in the long run.
	bank.SetAnswerDelay(bankName, answerDelay)
	drainedAt := drainDuringRenewal(t, managers[from].LogPath(), moved)
	waitFor(t, 10*time.Second, "the first shard to let go of the drained request", func() bool {
		btr := &tokensv1alpha1.BankTokenRequest{}
		return world.ControlPlane.Client.Get(ctx, moved, btr) == nil && btr.Labels[shard.ShardLabel()] == "" && btr.Labels[shard.DrainLabel()] == ""
	})
	bank.SetAnswerDelay(bankName, 0)
	assign(t, moved, to)
	assigned[moved] = to
	// The second shard's first renewal comes a renewal period after the first shard's last call.
	time.Sleep(time.Duration(*rounds)*renewalPeriod + answerDelay + time.Second)
	seen, watched := watch.stop()

	calls := map[string]map[string][]time.Time{}
	for name, m := range managers {
		var err error
		if calls[name], err = entriesOf(m.LogPath(), msgTokenCall); err != nil {
			t.Fatal(err)
		}
	}
	letGo, err := entriesOf(managers[from].LogPath(), msgLetGo)
	if err != nil || len(letGo[moved.Name]) == 0 {
		t.Fatalf("shard %s never logged letting go of %s (%v)", from, moved.Name, err)
	}
	letGoAt := latest(letGo[moved.Name])
	for key, owner := range assigned {
		name := key.Name
		if key == moved {
			continue
		}
		other := shardNames[0]
		if owner == other {
			other = shardNames[1]
		}
		if n := len(calls[other][name]); n > 0 {
			t.Errorf("%s is %s's, and %s called the bank for it %d times", name, owner, other, n)
		}
		if n := len(calls[owner][name]); n < 2**rounds {
			t.Errorf("%s: %s called the bank for it %d times, want at least %d (a first issue and its renewals)", name, owner, n, 2**rounds)
		}
	}
	checkMove(t, calls[from][moved.Name], calls[to][moved.Name], drainedAt, letGoAt)
	if n := bank.ReusedRefreshTokens(bankName); n > 0 {
		t.Errorf("the bank received a spent refresh token %d times", n)
	}
	if rejected := bank.Rejected(bankName); len(rejected) > 0 {
		t.Errorf("the bank refused %d calls", len(rejected))
	}
	checkNoTokenLost(t, slices.Concat(calls[from][moved.Name], calls[to][moved.Name]), seen, watched)
	checkOwnedSecretsLabelled(t, assigned)
	t.Logf("%d requests on 2 shards, %d renewals each before and after the move; %s let go of %s %s after the drain, "+
		"its call under way answered first; %d tokens of the moved request seen, every one valid at the bank; 0 refresh tokens reused",
		len(assigned), *rounds, from, moved.Name, letGoAt.Sub(drainedAt).Round(time.Millisecond), len(seen))
}

// checkShardLeases: each shard holds a Lease of its own name, labelled with the ring.
func checkShardLeases(t *testing.T, namespace string) {
	t.Helper()
	leases := &coordinationv1.LeaseList{}
	if err := world.ControlPlane.Client.List(t.Context(), leases, client.InNamespace(namespace), client.MatchingLabels{sharding.LabelControllerRing: ring}); err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, l := range leases.Items {
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != l.Name {
			t.Errorf("shard Lease %s is held by %v, want its own name", l.Name, l.Spec.HolderIdentity)
		}
		held = append(held, l.Name)
	}
	slices.Sort(held)
	if !slices.Equal(held, shardNames[:]) {
		t.Fatalf("shard Leases of ring %s: %v, want %v", ring, held, shardNames)
	}
}

// drainDuringRenewal waits until the shard's log shows a token call for key (the call is at
// the bank for answerDelay), then adds the drain label as the sharder does: a merge patch
// carrying the version read. It returns when the drain was written.
func drainDuringRenewal(t *testing.T, shardLog string, key types.NamespacedName) time.Time {
	t.Helper()
	before, err := entriesOf(shardLog, msgTokenCall)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*renewalPeriod, "a renewal of "+key.Name, func() bool {
		now, err := entriesOf(shardLog, msgTokenCall)
		return err == nil && len(now[key.Name]) > len(before[key.Name])
	})
	drain := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, sharding.Shard{Ring: ring}.DrainLabel())
	patchWithVersion(t, key, drain)
	return time.Now()
}

// assign labels key with shard, as the sharder's webhook does when the shard's release of
// it (an UPDATE that leaves it unassigned) passes through it.
func assign(t *testing.T, key types.NamespacedName, shard string) {
	t.Helper()
	patchWithVersion(t, key, fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, sharding.Shard{Ring: ring}.ShardLabel(), shard))
}

// patchWithVersion merge-patches key's metadata with optimistic locking, retrying a
// conflict as the sharder does.
func patchWithVersion(t *testing.T, key types.NamespacedName, patch string) {
	t.Helper()
	for range 10 {
		btr := &tokensv1alpha1.BankTokenRequest{}
		if err := world.ControlPlane.Client.Get(t.Context(), key, btr); err != nil {
			t.Fatal(err)
		}
		withVersion := fmt.Sprintf(`{"metadata":{"resourceVersion":%q,%s`, btr.ResourceVersion, patch[len(`{"metadata":{`):])
		err := world.ControlPlane.Client.Patch(t.Context(), btr, client.RawPatch(types.MergePatchType, []byte(withVersion)))
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			t.Fatal(err)
		}
	}
	t.Fatalf("patching %s: conflicts", key)
}

// checkMove: the first shard's calls for the moved request all started before it let go, and
// the last one was under way when the drain came and answered before the let-go; the second
// shard's all after; no two calls closer than half a renewal period (renewed once per
// renewal, not by both); and the second shard's first call waited for the renewal time the
// first shard's last token set.
func checkMove(t *testing.T, fromCalls, toCalls []time.Time, drainedAt, letGoAt time.Time) {
	t.Helper()
	if len(fromCalls) == 0 || len(toCalls) == 0 {
		t.Fatalf("calls for the moved request: %d by its first shard, %d by its second; want some by each", len(fromCalls), len(toCalls))
	}
	last := latest(fromCalls)
	if !last.Before(drainedAt) || !letGoAt.After(last.Add(answerDelay)) {
		t.Errorf("the first shard's last call started %s, the drain came %s, it let go %s: want the call under way at the drain and answered before the let-go",
			last.Format(time.StampMilli), drainedAt.Format(time.StampMilli), letGoAt.Format(time.StampMilli))
	}
	if letGoAt.After(last.Add(answerDelay + letGoBound)) {
		t.Errorf("the first shard let go %s after its last call started, want within the answer's delay and %s: the drain waited for a requeue",
			letGoAt.Sub(last).Round(time.Millisecond), letGoBound)
	}
	for _, c := range fromCalls {
		if c.After(letGoAt) {
			t.Errorf("the first shard called the bank for the moved request at %s, after it let go at %s", c.Format(time.StampMilli), letGoAt.Format(time.StampMilli))
		}
	}
	for _, c := range toCalls {
		if c.Before(letGoAt) {
			t.Errorf("the second shard called the bank for the moved request at %s, before the first let go at %s", c.Format(time.StampMilli), letGoAt.Format(time.StampMilli))
		}
	}
	all := slices.Concat(fromCalls, toCalls)
	slices.SortFunc(all, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(all); i++ {
		if gap := all[i].Sub(all[i-1]); gap < renewalPeriod/2 {
			t.Errorf("two calls for the moved request %s apart (at %s): renewed twice", gap.Round(time.Millisecond), all[i].Format(time.StampMilli))
		}
	}
	if first := earliest(toCalls); first.Sub(last) < renewalPeriod-answerDelay {
		t.Errorf("the second shard's first call came %s after the first shard's last: want it at the renewal time that call's token set",
			first.Sub(last).Round(time.Millisecond))
	}
}

// checkNoTokenLost: every call for the moved request made while it was watched (and
// answered before the watch ended) published a token, seen in its output Secret.
func checkNoTokenLost(t *testing.T, calls []time.Time, seen []string, watched [2]time.Time) {
	t.Helper()
	answered := 0
	for _, c := range calls {
		if c.After(watched[0]) && c.Add(answerDelay+time.Second).Before(watched[1]) {
			answered++
		}
	}
	// The first token seen was there before the watch.
	if published := len(seen) - 1; published < answered {
		t.Errorf("%d calls for the moved request were answered while its Secret was watched, and %d new tokens were published: %d lost",
			answered, published, answered-published)
	}
}

// checkOwnedSecretsLabelled: each request's output and refresh-token Secrets carry its
// shard's label, which the shard's cache selects them by.
func checkOwnedSecretsLabelled(t *testing.T, assigned map[types.NamespacedName]string) {
	t.Helper()
	label := sharding.Shard{Ring: ring}.ShardLabel()
	for key, shard := range assigned {
		for _, secretName := range []string{key.Name, key.Name + "-refresh-token"} {
			secret := &corev1.Secret{}
			if err := world.ControlPlane.Client.Get(t.Context(), types.NamespacedName{Namespace: key.Namespace, Name: secretName}, secret); err != nil {
				t.Fatal(err)
			}
			if got := secret.Labels[label]; got != shard {
				t.Errorf("Secret %s is labelled for shard %q, want %q (its request's)", secretName, got, shard)
			}
		}
	}
}

// tokenWatch polls one request's output Secret every 50 ms: the token there must be
// unexpired and accepted by the bank at every look; it records each new one.
type tokenWatch struct {
	stopOnce sync.Once
	done     chan struct{}
	finished chan struct{}
	started  time.Time
	mu       sync.Mutex
	seen     []string
}

func watchToken(t *testing.T, bank *sandbox.Server, key types.NamespacedName) *tokenWatch {
	w := &tokenWatch{done: make(chan struct{}), finished: make(chan struct{}), started: time.Now()}
	go func() {
		defer close(w.finished)
		for {
			select {
			case <-w.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			secret := &corev1.Secret{}
			if err := world.ControlPlane.Client.Get(t.Context(), key, secret); err != nil {
				t.Errorf("reading the moved request's output Secret: %v", err)
				return
			}
			token := string(secret.Data[tokensv1alpha1.SecretKeyAccessToken])
			expiresAt, err := time.Parse(time.RFC3339, string(secret.Data[tokensv1alpha1.SecretKeyExpiresAt]))
			// The bank counts a token's lifetime from when it decides, the client from the answer,
			// which the bank holds answerDelay: the bank's expiry comes that much sooner.
			atBank := expiresAt.Add(-answerDelay - time.Second)
			if now := time.Now(); err != nil || !now.Before(expiresAt) || (now.Before(atBank) && !bank.AccessTokenValid(bankName, token)) {
				t.Errorf("at %s the moved request's output Secret held a token expired at %s or refused by the bank", now.Format(time.StampMilli), expiresAt.Format(time.StampMilli))
				return
			}
			w.mu.Lock()
			if len(w.seen) == 0 || w.seen[len(w.seen)-1] != token {
				w.seen = append(w.seen, token)
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

// stop ends the watch; it returns the tokens seen (in order, none of them to be logged) and
// when the watch started and ended.
func (w *tokenWatch) stop() ([]string, [2]time.Time) {
	w.stopOnce.Do(func() { close(w.done) })
	<-w.finished
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen, [2]time.Time{w.started, time.Now()}
}

func createNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "sharding-"}}
	if err := world.ControlPlane.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func waitFor(t *testing.T, timeout time.Duration, what string, done func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !done(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
	}
}
