package harness

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// WaitForReady polls btr until its Ready condition has status and reason, and returns the
// resource as it then was (with its TypeMeta set, as a client sees it); after timeout it
// says what Ready last was.
func WaitForReady(ctx context.Context, c client.Reader, btr *tokensv1alpha1.BankTokenRequest,
	status metav1.ConditionStatus, reason string, timeout time.Duration) (*tokensv1alpha1.BankTokenRequest, error) {
	deadline := time.Now().Add(timeout)
	last := "no Ready condition"
	for {
		got := &tokensv1alpha1.BankTokenRequest{}
		err := c.Get(ctx, client.ObjectKeyFromObject(btr), got)
		switch ready := meta.FindStatusCondition(got.Status.Conditions, tokensv1alpha1.ConditionReady); {
		case err != nil:
			last = err.Error()
		case ready == nil:
		case ready.Status == status && ready.Reason == reason:
			got.TypeMeta = metav1.TypeMeta{APIVersion: tokensv1alpha1.GroupVersion.String(), Kind: "BankTokenRequest"}
			return got, nil
		default:
			last = fmt.Sprintf("%s %s: %s", ready.Status, ready.Reason, ready.Message)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: Ready never became %s/%s within %s; last: %s", btr.Name, status, reason, timeout, last)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ReadStatus reads btr's status and its Ready condition (the zero condition when absent).
func ReadStatus(ctx context.Context, c client.Reader, btr *tokensv1alpha1.BankTokenRequest) (tokensv1alpha1.BankTokenRequestStatus, metav1.Condition, error) {
	got := &tokensv1alpha1.BankTokenRequest{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(btr), got); err != nil {
		return got.Status, metav1.Condition{}, err
	}
	var ready metav1.Condition
	if c := meta.FindStatusCondition(got.Status.Conditions, tokensv1alpha1.ConditionReady); c != nil {
		ready = *c
	}
	return got.Status, ready, nil
}
