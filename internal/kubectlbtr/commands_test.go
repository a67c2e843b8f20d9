package kubectlbtr

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// outputToken is the access token the operator wrote for btr: what no output may contain.
func outputToken(t *testing.T, btr *tokensv1alpha1.BankTokenRequest) string {
	t.Helper()
	secret := &corev1.Secret{}
	if err := cluster.cp.Client.Get(context.Background(), client.ObjectKey{Namespace: btr.Namespace, Name: btr.Status.SecretName}, secret); err != nil {
		t.Fatal(err)
	}
	token := string(secret.Data["access_token"])
	if len(token) < 8 {
		t.Fatalf("output Secret of %s holds no token", btr.Name)
	}
	return token
}

func TestStatusShowsTimesSecretsAndThePodsThatMountTheToken(t *testing.T) {
	btr := readyRequest(t, providers.Paymob, "status-payments", "paymob")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: btr.Namespace, Name: "payouts-worker"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "registry.example/worker:1"}},
			Volumes: []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: btr.Status.SecretName}}}}}}
	bystander := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: btr.Namespace, Name: "bystander"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/web:1"}}}}
	for _, p := range []*corev1.Pod{pod, bystander} {
		if err := cluster.cp.Client.Create(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	out, code := kubectlBtr(t, "status", "paymob", "-n", btr.Namespace)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, out)
	}
	for _, want := range []string{"State:            Ready\n", "Ready=True  TokenIssued", " ago)\nExpires:", " (in 119m)\nRenewal:",
		btr.Status.SecretName + " (token)", "Pods using Secret " + btr.Status.SecretName + ": payouts-worker\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not show %q:\n%s", want, out)
		}
	}
	token := outputToken(t, btr)
	for _, format := range []string{"", "json", "yaml"} {
		args := []string{"status", "paymob", "-n", btr.Namespace}
		if format != "" {
			args = append(args, "-o", format)
		}
		if out, _ := kubectlBtr(t, args...); strings.Contains(out, token) {
			t.Errorf("status -o %q printed the access token", format)
		}
	}
	if out, code := kubectlBtr(t, "status", "absent", "-n", btr.Namespace); code != ExitError || !strings.Contains(out, "not found") {
		t.Errorf("status of a missing resource: exit %d, %q", code, out)
	}
}

func TestRefreshWaitReturnsOnceTheNewTokenIsWritten(t *testing.T) {
	btr := readyRequest(t, providers.Mbanq, "refresh-treasury", "mbanq")
	before := outputToken(t, btr)
	out, code := kubectlBtr(t, "refresh", "mbanq", "-n", btr.Namespace, "--wait", "--timeout=30s")
	if code != ExitOK || !strings.Contains(out, "new token written to Secret "+btr.Status.SecretName) {
		t.Fatalf("refresh --wait: exit %d: %s", code, out)
	}
	if outputToken(t, btr) == before {
		t.Error("refresh --wait returned, but the output Secret holds the old token")
	}
}

func TestRefreshWaitFailsWithItsExitCodeWhenTheBankRefuses(t *testing.T) {
	btr := readyRequest(t, providers.Paymob, "refresh-refused", "paymob")
	credentials := &corev1.Secret{}
	key := client.ObjectKey{Namespace: btr.Namespace, Name: btr.Spec.CredentialsSecretRef.Name}
	if err := cluster.cp.Client.Get(context.Background(), key, credentials); err != nil {
		t.Fatal(err)
	}
	credentials.Data["password"] = []byte("not-the-sandbox-password")
	if err := cluster.cp.Client.Update(context.Background(), credentials); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func(b *tokensv1alpha1.BankTokenRequest) bool { return b.Status.FailedAttempts > 0 }, btr)
	out, code := kubectlBtr(t, "refresh", "paymob", "-n", btr.Namespace, "--wait", "--timeout=30s")
	if code != ExitRefreshFailed || !strings.Contains(out, "the refresh of "+btr.Namespace+"/paymob failed") {
		t.Errorf("refresh --wait of refused credentials: exit %d: %s", code, out)
	}
}

func TestRefreshOfASuspendedRequestIsRefused(t *testing.T) {
	btr := readyRequest(t, providers.Paymob, "refresh-suspended", "paymob")
	patch := client.MergeFrom(btr.DeepCopy())
	btr.Spec.Suspend = true
	if err := cluster.cp.Client.Patch(context.Background(), btr, patch); err != nil {
		t.Fatal(err)
	}
	if out, code := kubectlBtr(t, "refresh", "paymob", "-n", btr.Namespace, "--wait"); code != ExitError || !strings.Contains(out, "suspended") {
		t.Errorf("refresh of a suspended request: exit %d: %s", code, out)
	}
}

func TestListSortsEveryNamespaceBySoonestExpiry(t *testing.T) {
	long := readyRequest(t, providers.Paymob, "list-payments", "paymob-long")
	short := readyRequest(t, providers.Mbanq, "list-treasury", "mbanq-short")
	createNamespace(t, "list-broken")
	broken := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "list-broken", Name: "no-credentials"},
		Spec: *long.Spec.DeepCopy()}
	broken.Spec.CredentialsSecretRef.Name = "absent"
	broken.Spec.TLS = nil
	if err := cluster.cp.Client.Create(context.Background(), broken); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func(b *tokensv1alpha1.BankTokenRequest) bool { return len(b.Status.Conditions) > 0 }, broken)

	out, code := kubectlBtr(t, "list", "-o", "json")
	list := &tokensv1alpha1.BankTokenRequestList{}
	if err := json.Unmarshal([]byte(out), list); code != ExitOK || err != nil {
		t.Fatalf("list -o json: exit %d, %v: %s", code, err, out)
	}
	order := map[string]int{}
	for i, item := range list.Items {
		order[item.Namespace+"/"+item.Name] = i
	}
	if !(order["list-broken/no-credentials"] < order["list-treasury/mbanq-short"] && order["list-treasury/mbanq-short"] < order["list-payments/paymob-long"]) {
		t.Errorf("list order %v: want no token first, then the 20-minute token, then the 2-hour one", order)
	}
	table, _ := kubectlBtr(t, "list")
	if !strings.Contains(table, "EXPIRES IN") || strings.Index(table, "mbanq-short") > strings.Index(table, "paymob-long") ||
		!strings.Contains(table, "CredentialsSecretNotFound") {
		t.Errorf("list table:\n%s", table)
	}
	scoped, _ := kubectlBtr(t, "list", "-n", "list-treasury")
	if strings.Contains(scoped, "paymob-long") || !strings.Contains(scoped, short.Name) {
		t.Errorf("list -n list-treasury:\n%s", scoped)
	}
}

func waitFor(t *testing.T, done func(*tokensv1alpha1.BankTokenRequest) bool, btr *tokensv1alpha1.BankTokenRequest) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		got := &tokensv1alpha1.BankTokenRequest{}
		if err := cluster.cp.Client.Get(context.Background(), client.ObjectKeyFromObject(btr), got); err == nil && done(got) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s/%s: condition not reached within 30s", btr.Namespace, btr.Name)
}
