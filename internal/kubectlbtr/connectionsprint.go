package kubectlbtr

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// usedByShown is how many requests a table row names before "(+N more)"; -o json names all.
const usedByShown = 3

// printConnections writes the report for people, one connection a line.
func printConnections(out io.Writer, r *connectionsReport, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "KIND\tNAMESPACE\tNAME\tREADY\tREASON\tPROVIDER\tSHARING\tREQUESTS\tCALLS/BUDGET\tPAUSED UNTIL\tUSED BY")
	for i := range r.Connections {
		c := &r.Connections[i]
		ready, reason := connectionReady(&c.Status)
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Kind, orDash(c.Namespace), c.Name, ready, reason,
			c.Provider, orDash(string(c.GrantSharing)), requestCounts(&c.Status), callsAndBudget(c), pausedUntil(c.Status.Budget, now),
			usedBy(c))
	}
	_ = w.Flush()
	if len(r.MissingConnections) == 0 {
		return
	}
	fmt.Fprintln(out, "\nRequests that name a connection that does not exist:")
	for _, m := range r.MissingConnections {
		fmt.Fprintf(out, "  %s -> %s %s\n", m.Request, m.Connection.Kind, m.Connection.Name)
	}
}

func connectionReady(status *tokensv1alpha1.BankConnectionStatus) (ready, reason string) {
	for _, c := range status.Conditions {
		if c.Type == tokensv1alpha1.ConditionReady {
			return string(c.Status), orDash(c.Reason)
		}
	}
	return "-", "-"
}

// requestCounts is the operator's count of the requests that use the connection, and of
// those its gates refuse.
func requestCounts(status *tokensv1alpha1.BankConnectionStatus) string {
	if status.RefusedRequests > 0 {
		return fmt.Sprintf("%d (%d refused)", status.Requests, status.RefusedRequests)
	}
	return fmt.Sprint(status.Requests)
}

// callsAndBudget is "12/60 per 1m": the calls made in the budget's last interval, of its
// limit. Before the operator reports any, the calls are "-" and the budget the spec's.
func callsAndBudget(c *connectionSummary) string {
	if b := c.Status.Budget; b != nil {
		return fmt.Sprintf("%d/%d per %s", b.Calls, b.Limit, shortDuration(b.Interval.Duration))
	}
	limit, interval := int32(tokensv1alpha1.DefaultCallBudgetCalls), tokensv1alpha1.DefaultCallBudgetInterval
	if c.CallBudget != nil && c.CallBudget.Calls != nil {
		limit = *c.CallBudget.Calls
	}
	if c.CallBudget != nil && c.CallBudget.Interval != nil {
		interval = shortDuration(c.CallBudget.Interval.Duration)
	}
	return fmt.Sprintf("-/%d per %s", limit, interval)
}

func pausedUntil(budget *tokensv1alpha1.CallBudgetStatus, now time.Time) string {
	if budget == nil {
		return "-"
	}
	return since(budget.PausedUntil, now)
}

// usedBy names the requests: by name alone for a BankConnection (they share its namespace),
// as namespace/name for a ClusterBankConnection; then how many shared grants serve them.
func usedBy(c *connectionSummary) string {
	requests := usingRequests(c)
	switch len(c.SharedGrants) {
	case 0:
		return requests
	case 1:
		return requests + " (1 shared grant)"
	}
	return requests + fmt.Sprintf(" (%d shared grants)", len(c.SharedGrants))
}

func usingRequests(c *connectionSummary) string {
	names := make([]string, 0, len(c.UsedBy))
	for _, request := range c.UsedBy {
		if c.Namespace != "" {
			request = strings.TrimPrefix(request, c.Namespace+"/")
		}
		names = append(names, request)
	}
	switch {
	case len(names) == 0:
		return "<none>"
	case len(names) > usedByShown:
		return strings.Join(names[:usedByShown], ",") + fmt.Sprintf(" (+%d more)", len(names)-usedByShown)
	}
	return strings.Join(names, ",")
}

// shortDuration is 1m rather than time.Duration's 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
