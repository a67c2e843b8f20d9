package kubectlbtr

import (
	"context"
	"fmt"
	"sort"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// statusReport is everything `status` shows. Secrets appear by name and role only.
type statusReport struct {
	Request      *tokensv1alpha1.BankTokenRequest `json:"request"`
	OwnedSecrets []ownedSecret                    `json:"ownedSecrets"`
	// MountedBy are the Pods that use the output Secret (volume, projected volume or env).
	MountedBy []string       `json:"mountedBy"`
	Events    []eventSummary `json:"events"`
}

type ownedSecret struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

type eventSummary struct {
	Type    string      `json:"type"`
	Reason  string      `json:"reason"`
	Message string      `json:"message"`
	Count   int32       `json:"count"`
	Last    metav1.Time `json:"last"`
}

func newStatusCommand(o *options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Conditions, token times, last failures and events, owned Secrets and the Pods that mount the output Secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, key, err := o.target(args[0])
			if err != nil {
				return err
			}
			report, err := gatherStatus(cmd.Context(), c, key)
			if err != nil {
				return err
			}
			if output != "" {
				return printStructured(o.streams.Out, output, report)
			}
			printStatus(o.streams.Out, report, clockNow())
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func gatherStatus(ctx context.Context, c client.Client, key client.ObjectKey) (*statusReport, error) {
	btr := &tokensv1alpha1.BankTokenRequest{}
	if err := c.Get(ctx, key, btr); err != nil {
		return nil, err
	}
	btr.SetGroupVersionKind(tokensv1alpha1.GroupVersion.WithKind("BankTokenRequest"))
	btr.ManagedFields = nil
	report := &statusReport{Request: btr}
	var err error
	if report.OwnedSecrets, err = ownedSecrets(ctx, c, btr); err != nil {
		return nil, err
	}
	if report.MountedBy, err = podsUsingSecret(ctx, c, btr.Namespace, outputSecret(btr)); err != nil {
		return nil, err
	}
	if report.Events, err = recentEvents(ctx, c, btr); err != nil {
		return nil, err
	}
	return report, nil
}

func outputSecret(btr *tokensv1alpha1.BankTokenRequest) string {
	if btr.Status.SecretName != "" {
		return btr.Status.SecretName
	}
	if btr.Spec.SecretName != "" {
		return btr.Spec.SecretName
	}
	return btr.Name
}

// ownedSecrets lists Secrets' metadata only, through the metadata API: their data, the
// tokens, never reaches this process. They carry the operator's request label, and the
// owner reference, checked too, is what ties them to the resource.
func ownedSecrets(ctx context.Context, c client.Client, btr *tokensv1alpha1.BankTokenRequest) ([]ownedSecret, error) {
	secrets := &metav1.PartialObjectMetadataList{}
	secrets.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := c.List(ctx, secrets, client.InNamespace(btr.Namespace), client.HasLabels{tokensv1alpha1.RequestLabel}); err != nil {
		return nil, fmt.Errorf("listing the Secrets of %s/%s: %w", btr.Namespace, btr.Name, err)
	}
	owned := []ownedSecret{}
	for _, s := range secrets.Items {
		if owner := metav1.GetControllerOf(&s); owner != nil && owner.UID == btr.UID {
			owned = append(owned, ownedSecret{Name: s.Name, Role: s.Labels[tokensv1alpha1.SecretRoleLabel]})
		}
	}
	sort.Slice(owned, func(i, j int) bool { return owned[i].Name < owned[j].Name })
	return owned, nil
}

// recentEvents are the resource's events, newest first, at most ten.
func recentEvents(ctx context.Context, c client.Client, btr *tokensv1alpha1.BankTokenRequest) ([]eventSummary, error) {
	events := &corev1.EventList{}
	selector := fields.OneTermEqualSelector("involvedObject.uid", string(btr.UID))
	if err := c.List(ctx, events, client.InNamespace(btr.Namespace), client.MatchingFieldsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("listing the events of %s/%s: %w", btr.Namespace, btr.Name, err)
	}
	summaries := []eventSummary{}
	for _, e := range events.Items {
		summaries = append(summaries, eventSummary{Type: e.Type, Reason: e.Reason, Message: e.Message,
			Count: eventCount(e), Last: lastSeen(e)})
	}
	sort.SliceStable(summaries, func(i, j int) bool { return summaries[i].Last.After(summaries[j].Last.Time) })
	return summaries[:min(len(summaries), 10)], nil
}
