package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/referencewatch"
)

// The reconciles below run with the metadata caches a manager gives the reconciler: the
// fixture's client stands in for the owned Secrets' cache, and a reference watch whose
// namespace store is filled from the client as its watch would be (syncReferences).

// secretReads counts the reconciler's reads of Secrets from the apiserver.
type secretReads struct {
	client.Reader
	count int
}

func (s *secretReads) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok {
		s.count++
	}
	return s.Reader.Get(ctx, key, obj, opts...)
}

// withMetadataCaches gives f's reconciler the manager's metadata caches, and returns the
// counter of its Secret reads.
func (f *fixture) withMetadataCaches() *secretReads {
	reads := &secretReads{Reader: f.client}
	f.r.APIReader = reads
	f.r.ownedSecrets = f.client
	f.r.references = referencewatch.NewForTest()
	f.syncReferences()
	return reads
}

// syncReferences brings the namespace's watch of referenced objects up to the client's
// state, as a watch event would.
func (f *fixture) syncReferences() {
	f.t.Helper()
	secrets := &corev1.SecretList{}
	must(f.t, f.client.List(context.Background(), secrets, client.InNamespace(f.key.Namespace)))
	var listed []metav1.Object
	for i := range secrets.Items {
		if _, owned := secrets.Items[i].Labels[tokensv1alpha1.SecretRoleLabel]; !owned {
			listed = append(listed, &secrets.Items[i])
		}
	}
	must(f.t, f.r.references.Seed("Secret", f.key.Namespace, listed...))
	must(f.t, f.r.references.Seed("ConfigMap", f.key.Namespace))
}

// idleReconcile reconciles with nothing due and expects neither a read, a write nor a call.
func (f *fixture) idleReconcile(reads *secretReads, step string) {
	f.t.Helper()
	readsBefore, writesBefore, callsBefore := reads.count, len(f.writes), len(f.bank.calls)
	result := f.reconcile()
	if reads.count != readsBefore || len(f.writes) != writesBefore || len(f.bank.calls) != callsBefore {
		f.t.Fatalf("%s: %d Secret reads, %d writes, %d calls; want none", step,
			reads.count-readsBefore, len(f.writes)-writesBefore, len(f.bank.calls)-callsBefore)
	}
	if want := f.resource().Status.RenewalTime.Sub(f.clock.Now()); result.RequeueAfter != want {
		f.t.Errorf("%s: requeued after %s, want the renewal in %s", step, result.RequeueAfter, want)
	}
}

func TestIdleReconcileReadsNoSecret(t *testing.T) {
	f := newFixture(t)
	reads := f.withMetadataCaches()
	f.issue()
	observed := f.resource().Status.Observed
	if observed == nil || observed.OutputSecret != f.secret("paymob").ResourceVersion ||
		observed.RefreshTokenSecret != f.secret(refreshSecretName(f.resource())).ResourceVersion || observed.Inputs == "" {
		t.Fatalf("status.observed after the issue = %+v; want the versions written", observed)
	}
	f.clock.Step(10 * time.Minute)
	f.idleReconcile(reads, "a reconcile with nothing due")

	// A restart: a reconciler with no memory, the same caches.
	caches := f.r
	f.r = f.newReconciler()
	f.r.APIReader, f.r.ownedSecrets, f.r.references = reads, caches.ownedSecrets, caches.references
	f.idleReconcile(reads, "the first reconcile after a restart")

	f.stepToRenewal()
	readsBefore := reads.count
	f.reconcile()
	f.expectCalls(2)
	if reads.count == readsBefore {
		t.Error("the renewal was decided without reading the Secrets it sends")
	}
	f.idleReconcile(reads, "a reconcile after the renewal")
}

func TestTamperedOutputSecretIsRepairedAfterVerifiedReconciles(t *testing.T) {
	f := newFixture(t)
	reads := f.withMetadataCaches()
	f.issue()
	f.idleReconcile(reads, "before the edit")

	// Edited by hand, labels and annotations kept: only the version tells.
	tampered := f.secret("paymob")
	tampered.Data["access_token"] = []byte("edited-by-hand")
	must(t, f.client.Update(context.Background(), tampered))
	f.reconcile()
	if got := f.accessToken(); got == "edited-by-hand" || !f.bank.accepts(got) {
		t.Fatal("the edited output Secret was not put back with a working token")
	}
	f.expectReady("True", tokensv1alpha1.ReasonTokenIssued)
	f.idleReconcile(reads, "after the repair")
}

func TestChangedInputsAreActedOnAtOnce(t *testing.T) {
	for name, change := range map[string]func(f *fixture){
		"credentials Secret": func(f *fixture) {
			must(f.t, f.client.Update(context.Background(), credentialsSecret("fixture-password-rotated")))
			f.syncReferences()
		},
		"forced refresh": func(f *fixture) {
			btr := f.resource()
			btr.Annotations = map[string]string{tokensv1alpha1.RefreshRequestedAtAnnotation: "2026-11-30T09:30:00Z"}
			must(f.t, f.client.Update(context.Background(), btr))
		},
		"spec": func(f *fixture) { f.update(func(b *tokensv1alpha1.BankTokenRequest) { b.Spec.Scope = "read write" }) },
		"refresh-token Secret deleted": func(f *fixture) {
			must(f.t, f.client.Delete(context.Background(), f.secret(refreshSecretName(f.resource()))))
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.t = t
			reads := f.withMetadataCaches()
			f.issue()
			f.idleReconcile(reads, "before the change")
			change(f)
			readsBefore := reads.count
			f.reconcile()
			if reads.count == readsBefore {
				t.Fatal("the change was not noticed: nothing was read")
			}
			if name != "refresh-token Secret deleted" {
				f.expectCalls(2)
			}
			f.idleReconcile(reads, "after the change")
		})
	}
}

func TestUnsyncedReferenceWatchReadsEverything(t *testing.T) {
	f := newFixture(t)
	reads := f.withMetadataCaches()
	f.issue()
	// The namespace is watched, and its Secrets have not been listed yet.
	f.r.references = referencewatch.NewForTest()
	must(t, f.r.references.Seed("ConfigMap", f.key.Namespace))
	readsBefore := reads.count
	f.reconcile()
	if reads.count == readsBefore {
		t.Fatal("a reconcile trusted a watch that has not listed yet")
	}
	f.expectCalls(1)
}
