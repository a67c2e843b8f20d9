package sharding

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/harness"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
	"github.com/banktoken/bank-token-operator/internal/sharding"
)

// sharedGrantGrace is --shared-grant-grace: how long a holder nobody reads outlives its
// last reader.
const sharedGrantGrace = 2 * time.Second

// A shared grant's holder is in one shard and its readers in both: the reader in the other
// shard copies every renewal of the holder's token (no watch brings it back, it reads the
// holder when its renewal is due), and when the holder's own shard has no reader left the
// holder stays while the other shard's reader reads it, then goes after the grace once that
// one is deleted too.
func TestASharedGrantsHolderServesReadersInBothShardsAndGoesOnlyWithTheLast(t *testing.T) {
	ctx := t.Context()
	bank := startBank(t)
	shard := sharding.Shard{Ring: ring}
	namespace := createNamespace(t)
	connection, scope := applySharedConnection(t, bank, namespace)
	readers := map[string]types.NamespacedName{}
	for _, s := range shardNames {
		reader := &tokensv1alpha1.BankTokenRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "reader-" + s, Labels: map[string]string{shard.ShardLabel(): s}},
			Spec: tokensv1alpha1.BankTokenRequestSpec{
				ConnectionRef: &tokensv1alpha1.ConnectionReference{Kind: tokensv1alpha1.KindBankConnection, Name: connection.Name},
				Scope:         scope,
			},
		}
		if err := world.ControlPlane.Client.Create(ctx, reader); err != nil {
			t.Fatal(err)
		}
		readers[s] = client.ObjectKeyFromObject(reader)
	}
	flags := []string{"--secret-propagation-delay=2s", "--min-renewal-interval=1s", "--shared-grant-grace=" + sharedGrantGrace.String(),
		"--shared-grant-copy-allowance=2s"}
	for _, name := range shardNames {
		startShard(t, ring, name, namespace, flags...)
	}
	// A reader creates the holder; the sharder's webhook would assign it, this test gives it
	// to the first shard.
	var holder types.NamespacedName
	waitFor(t, 20*time.Second, "a reader to create the shared grant's holder", func() bool {
		holders := &tokensv1alpha1.BankTokenRequestList{}
		err := world.ControlPlane.Client.List(ctx, holders, client.InNamespace(namespace), client.MatchingLabels{tokensv1alpha1.SharedGrantLabel: tokensv1alpha1.SharedGrantLabelValue})
		if err != nil || len(holders.Items) == 0 {
			return false
		}
		holder = client.ObjectKeyFromObject(&holders.Items[0])
		return true
	})
	assign(t, holder, shardNames[0])

	// Both readers hold the holder's token, renewal after renewal; the other shard's reader
	// is deleted last.
	other := readers[shardNames[1]]
	seen := followHolder(t, holder, other, 3)
	t.Logf("the other shard's reader held each of %d renewed tokens of the holder", seen)
	deleteAndWait(t, readers[shardNames[0]])
	// The holder's shard has no reader left: through the grace and a renewal, it must stay.
	time.Sleep(sharedGrantGrace + renewalPeriod)
	if err := world.ControlPlane.Client.Get(ctx, holder, &tokensv1alpha1.BankTokenRequest{}); err != nil {
		t.Fatalf("the holder went while the other shard's reader read it: %v", err)
	}
	followHolder(t, holder, other, 1)
	deleteAndWait(t, other)
	waitFor(t, sharedGrantGrace+2*renewalPeriod+5*time.Second, "the holder to go after its last reader", func() bool {
		return apierrors.IsNotFound(world.ControlPlane.Client.Get(ctx, holder, &tokensv1alpha1.BankTokenRequest{}))
	})
	if n := bank.ReusedRefreshTokens(bankName); n > 0 {
		t.Errorf("the bank received a spent refresh token %d times", n)
	}
}

// applySharedConnection creates a BankConnection of the sandbox bank in namespace, sharing
// its grants, with its credentials and CA bundle, and the scope to ask it for.
func applySharedConnection(t *testing.T, bank *sandbox.Server, namespace string) (*tokensv1alpha1.BankConnection, string) {
	t.Helper()
	req := harness.NewSandboxRequest(bank, bankName, namespace, "shared")
	connection := &tokensv1alpha1.BankConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "shared"},
		Spec:       tokensv1alpha1.BankConnectionSpec{BankClient: req.Request.Spec.BankClient, GrantSharing: tokensv1alpha1.GrantSharingShared},
	}
	for _, o := range []client.Object{req.Credentials, req.CABundle, connection} {
		if err := harness.CreateOrUpdate(t.Context(), world.ControlPlane.Client, o); err != nil {
			t.Fatal(err)
		}
	}
	return connection, req.Request.Spec.Scope
}

// followHolder waits for renewals of the holder's token, and for each, for reader's output
// Secret to hold it before the token it replaced expires; it returns how many it saw.
func followHolder(t *testing.T, holder, reader types.NamespacedName, renewals int) int {
	t.Helper()
	last := ""
	deadline := time.Now().Add(time.Duration(renewals+2)*renewalPeriod + 10*time.Second)
	for seen := 0; seen < renewals; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d renewals of the holder's token seen by %s", seen, renewals, deadline.Format(time.StampMilli))
		}
		if err := world.ControlPlane.Client.Get(t.Context(), holder, &tokensv1alpha1.BankTokenRequest{}); err != nil {
			t.Fatalf("the holder is gone while %s reads it: %v", reader.Name, err)
		}
		token, expiresAt := tokenIn(t, holder)
		if token == "" || token == last {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		waitFor(t, time.Until(expiresAt), "the other shard's reader to copy the holder's token", func() bool {
			copied, _ := tokenIn(t, reader)
			return copied == token
		})
		if last != "" {
			seen++
		}
		last = token
	}
	return renewals
}

// tokenIn is the access token in key's output Secret and when it expires; "" when none.
func tokenIn(t *testing.T, key types.NamespacedName) (string, time.Time) {
	t.Helper()
	secret := &corev1.Secret{}
	if err := world.ControlPlane.Client.Get(t.Context(), key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return "", time.Time{}
		}
		t.Fatal(err)
	}
	expiresAt, _ := time.Parse(time.RFC3339, string(secret.Data[tokensv1alpha1.SecretKeyExpiresAt]))
	return string(secret.Data[tokensv1alpha1.SecretKeyAccessToken]), expiresAt
}

func deleteAndWait(t *testing.T, key types.NamespacedName) {
	t.Helper()
	if err := world.ControlPlane.Client.Delete(t.Context(), &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, key.Name+" to be deleted", func() bool {
		return apierrors.IsNotFound(world.ControlPlane.Client.Get(t.Context(), key, &tokensv1alpha1.BankTokenRequest{}))
	})
}
