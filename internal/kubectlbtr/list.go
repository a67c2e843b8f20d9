package kubectlbtr

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

func newListCommand(o *options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Every BankTokenRequest, in all namespaces unless --namespace is given, soonest expiry first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			var scope []client.ListOption
			if o.config.Namespace != nil && *o.config.Namespace != "" {
				scope = append(scope, client.InNamespace(*o.config.Namespace))
			}
			list := &tokensv1alpha1.BankTokenRequestList{}
			if err := c.List(cmd.Context(), list, scope...); err != nil {
				return err
			}
			sortByExpiry(list.Items)
			if output != "" {
				list.SetGroupVersionKind(tokensv1alpha1.GroupVersion.WithKind("BankTokenRequestList"))
				return printStructured(o.streams.Out, output, list)
			}
			printList(o.streams.Out, list.Items, clockNow())
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

// sortByExpiry puts first what runs out first; a resource holding no token at all comes
// before every one that holds one.
func sortByExpiry(items []tokensv1alpha1.BankTokenRequest) {
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i].Status.ExpiresAt, items[j].Status.ExpiresAt
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case !a.Equal(b):
			return a.Before(b)
		}
		return items[i].Namespace+"/"+items[i].Name < items[j].Namespace+"/"+items[j].Name
	})
}

func printList(out io.Writer, items []tokensv1alpha1.BankTokenRequest, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAMESPACE\tNAME\tPROVIDER\tSTATE\tEXPIRES IN\tRENEWAL IN\tFAILURES\tLAST FAILURE\tREASON\tSECRET")
	for i := range items {
		btr := &items[i]
		status := &btr.Status
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", btr.Namespace, btr.Name, btr.Spec.Provider,
			tokensv1alpha1.TokenState(status), until(status.ExpiresAt, now), until(status.RenewalTime, now),
			status.FailedAttempts, since(status.LastFailureTime, now), readyReason(btr), outputSecret(btr))
	}
	_ = w.Flush()
}

func readyReason(btr *tokensv1alpha1.BankTokenRequest) string {
	for _, c := range btr.Status.Conditions {
		if c.Type == tokensv1alpha1.ConditionReady {
			return c.Reason
		}
	}
	return "-"
}
