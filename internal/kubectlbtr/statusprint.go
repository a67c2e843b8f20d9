package kubectlbtr

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// printStatus writes the report for people, in kubectl describe's layout.
func printStatus(out io.Writer, r *statusReport, now time.Time) {
	btr, status := r.Request, &r.Request.Status
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Name:\t%s/%s\n", btr.Namespace, btr.Name)
	fmt.Fprintf(w, "Provider:\t%s\n", btr.Spec.Provider)
	fmt.Fprintf(w, "Endpoint:\t%s\n", btr.Spec.Endpoint)
	fmt.Fprintf(w, "State:\t%s\n", tokensv1alpha1.TokenState(&btr.Status))
	fmt.Fprintf(w, "Issued:\t%s\n", localAndRelative(status.IssuedAt, now))
	fmt.Fprintf(w, "Expires:\t%s\n", localAndRelative(status.ExpiresAt, now))
	fmt.Fprintf(w, "Renewal:\t%s\n", localAndRelative(status.RenewalTime, now))
	fmt.Fprintf(w, "Failed attempts:\t%d\n", status.FailedAttempts)
	fmt.Fprintf(w, "Last failure:\t%s\n", localAndRelative(status.LastFailureTime, now))
	if status.LastRefreshRequestedAt != "" {
		fmt.Fprintf(w, "Last refresh request:\t%s\n", status.LastRefreshRequestedAt)
	}
	if a := status.LastAttempt; a != nil {
		fmt.Fprintf(w, "Last token call:\t%s\n", lastAttempt(a, now))
	}
	_ = w.Flush()
	fmt.Fprintln(out, "Conditions:")
	for _, c := range status.Conditions {
		fmt.Fprintf(out, "  %s=%s  %s  since %s\n    %s\n", c.Type, c.Status, c.Reason, localAndRelative(&c.LastTransitionTime, now), c.Message)
	}
	fmt.Fprintln(out, "Secrets owned:")
	for _, s := range r.OwnedSecrets {
		fmt.Fprintf(out, "  %s (%s)\n", s.Name, s.Role)
	}
	fmt.Fprintf(out, "Pods using Secret %s: %s\n", outputSecret(btr), listOrNone(r.MountedBy))
	fmt.Fprintln(out, "Events (newest first):")
	for _, e := range r.Events {
		fmt.Fprintf(out, "  %-7s %-22s x%-3d %s  %s\n", e.Type, e.Reason, e.Count, relative(e.Last.Time, now), e.Message)
	}
	if len(r.Events) == 0 {
		fmt.Fprintln(out, "  <none>")
	}
}

// lastAttempt is "Failed InvalidScope, 3m ago, x-fapi-interaction-id …": what a bank's
// support desk is asked about.
func lastAttempt(a *tokensv1alpha1.TokenCallAttempt, now time.Time) string {
	text := string(a.Outcome)
	if a.Reason != "" {
		text += " " + a.Reason
	}
	text += ", " + localAndRelative(&a.Time, now)
	if a.InteractionID != "" {
		text += ", x-fapi-interaction-id " + a.InteractionID
	}
	return text
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "<none>"
	}
	return strings.Join(items, ", ")
}

// printStructured writes v as JSON or YAML (-o json|yaml).
func printStructured(out io.Writer, format string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		if data, err = yaml.JSONToYAML(data); err != nil {
			return err
		}
	} else {
		data = append(data, '\n')
	}
	_, err = out.Write(data)
	return err
}
