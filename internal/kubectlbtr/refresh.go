package kubectlbtr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

type refreshOptions struct {
	wait    bool
	timeout time.Duration
}

func newRefreshCommand(o *options) *cobra.Command {
	var r refreshOptions
	cmd := &cobra.Command{
		Use:   "refresh NAME",
		Short: "Ask the operator for a new token now (sets the " + tokensv1alpha1.RefreshRequestedAtAnnotation + " annotation)",
		Long: "Ask the operator for a new token now. With --wait, follow the attempt until the new token is\n" +
			"written to the output Secret or the attempt fails.\n\n" +
			"Exit codes: 0 requested (with --wait: new token written); 1 error (no such resource, suspended,\n" +
			"the apiserver refused); 2 with --wait: the attempt failed (kubectl btr status NAME says why);\n" +
			"3 with --wait: no answer within --timeout.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, key, err := o.target(args[0])
			if err != nil {
				return err
			}
			return r.run(cmd, c, key)
		},
	}
	cmd.Flags().BoolVar(&r.wait, "wait", false, "Wait until the new token is written or the attempt fails")
	cmd.Flags().DurationVar(&r.timeout, "timeout", 2*time.Minute, "How long --wait waits")
	return cmd
}

func (r refreshOptions) run(cmd *cobra.Command, c client.Client, key client.ObjectKey) error {
	out := cmd.OutOrStdout()
	requested, err := requestRefresh(cmd.Context(), c, key, clockNow())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "refresh of %s requested (%s=%s)\n", key, tokensv1alpha1.RefreshRequestedAtAnnotation, requested)
	if !r.wait {
		return nil
	}
	btr, err := waitForAnswer(cmd.Context(), c, key, requested, r.timeout)
	if errors.Is(err, context.DeadlineExceeded) {
		return &ExitCodeError{Code: ExitWaitTimedOut, Err: fmt.Errorf("the operator did not act on the refresh of %s within %s", key, r.timeout)}
	}
	if err != nil {
		return err
	}
	if btr.Status.FailedAttempts > 0 {
		return &ExitCodeError{Code: ExitRefreshFailed, Err: fmt.Errorf("the refresh of %s failed: %s (kubectl btr status %s -n %s)",
			key, readyMessage(btr), key.Name, key.Namespace)}
	}
	fmt.Fprintf(out, "new token written to Secret %s, expires %s\n", outputSecret(btr), localAndRelative(btr.Status.ExpiresAt, clockNow()))
	return nil
}

// requestRefresh sets the annotation to a value never used before; the operator acts once
// per distinct value. A suspended resource would never act on it, so it is refused here.
func requestRefresh(ctx context.Context, c client.Client, key client.ObjectKey, now time.Time) (string, error) {
	btr := &tokensv1alpha1.BankTokenRequest{}
	if err := c.Get(ctx, key, btr); err != nil {
		return "", err
	}
	if btr.Spec.Suspend {
		return "", fmt.Errorf("%s is suspended (spec.suspend): the operator requests no token for it", key)
	}
	requested := now.UTC().Format(time.RFC3339Nano)
	patch := client.MergeFrom(btr.DeepCopy())
	if btr.Annotations == nil {
		btr.Annotations = map[string]string{}
	}
	btr.Annotations[tokensv1alpha1.RefreshRequestedAtAnnotation] = requested
	if err := c.Patch(ctx, btr, patch); err != nil {
		return "", fmt.Errorf("setting the refresh annotation on %s: %w", key, err)
	}
	return requested, nil
}

// waitForAnswer polls until the operator records that it acted on this request: status
// names the request whether the attempt succeeded or failed.
func waitForAnswer(ctx context.Context, c client.Client, key client.ObjectKey, requested string, timeout time.Duration) (*tokensv1alpha1.BankTokenRequest, error) {
	btr := &tokensv1alpha1.BankTokenRequest{}
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, btr); err != nil {
			return false, err
		}
		return btr.Status.LastRefreshRequestedAt == requested, nil
	})
	return btr, err
}

func readyMessage(btr *tokensv1alpha1.BankTokenRequest) string {
	for _, c := range btr.Status.Conditions {
		if c.Type == tokensv1alpha1.ConditionReady {
			return c.Reason + ": " + c.Message
		}
	}
	return "no Ready condition"
}
