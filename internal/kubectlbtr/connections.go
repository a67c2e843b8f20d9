package kubectlbtr

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// connectionsReport is everything `connections` shows.
type connectionsReport struct {
	Connections []connectionSummary `json:"connections"`
	// MissingConnections are requests that name a connection that does not exist.
	MissingConnections []missingConnection `json:"missingConnections,omitempty"`
}

// connectionSummary is one BankConnection or ClusterBankConnection, with the requests that
// name it, found by listing BankTokenRequests.
type connectionSummary struct {
	Kind         string                              `json:"kind"`
	Namespace    string                              `json:"namespace,omitempty"`
	Name         string                              `json:"name"`
	Provider     tokensv1alpha1.Provider             `json:"provider"`
	GrantSharing tokensv1alpha1.GrantSharing         `json:"grantSharing,omitempty"`
	CallBudget   *tokensv1alpha1.CallBudget          `json:"callBudget,omitempty"`
	Status       tokensv1alpha1.BankConnectionStatus `json:"status"`
	// UsedBy are the requests that name it, as namespace/name; the holders of its shared
	// grants, which the operator creates, are not among them.
	UsedBy []string `json:"usedBy"`
	// SharedGrants are the holders of its shared grants (grantSharing Shared), as namespace/name.
	SharedGrants []string `json:"sharedGrants,omitempty"`
}

type missingConnection struct {
	Request    string                             `json:"request"`
	Connection tokensv1alpha1.ConnectionReference `json:"connection"`
}

// connectionKey names a connection as a request's connectionRef reaches it: a BankConnection
// in the request's namespace, a ClusterBankConnection in none.
type connectionKey struct {
	kind, namespace, name string
}

func newConnectionsCommand(o *options) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "connections",
		Aliases: []string{"connection", "conn"},
		Short:   "Every BankConnection and ClusterBankConnection: ready, budget, pause, and the requests that use it",
		Long: "Every ClusterBankConnection and every BankConnection (of --namespace only, when given), with\n" +
			"the Ready condition, the call budget's use, a pause the bank asked for, and the BankTokenRequests\n" +
			"that name each (with --namespace, those of that namespace only).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			namespace := ""
			if o.config.Namespace != nil {
				namespace = *o.config.Namespace
			}
			report, err := gatherConnections(cmd.Context(), c, namespace, func(note string) { fmt.Fprintln(o.streams.ErrOut, note) })
			if err != nil {
				return err
			}
			if output != "" {
				return printStructured(o.streams.Out, output, report)
			}
			printConnections(o.streams.Out, report, clockNow())
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

// gatherConnections lists the connections and the requests, all namespaces' or namespace's,
// and groups the requests by the connection they name. A tenant who may not list
// ClusterBankConnections still sees its namespace's BankConnections: note says so.
func gatherConnections(ctx context.Context, c client.Client, namespace string, note func(string)) (*connectionsReport, error) {
	var scope []client.ListOption
	if namespace != "" {
		scope = append(scope, client.InNamespace(namespace))
	}
	requests := &tokensv1alpha1.BankTokenRequestList{}
	if err := c.List(ctx, requests, scope...); err != nil {
		return nil, err
	}
	namespaced := &tokensv1alpha1.BankConnectionList{}
	if err := c.List(ctx, namespaced, scope...); err != nil {
		return nil, err
	}
	cluster := &tokensv1alpha1.ClusterBankConnectionList{}
	if err := c.List(ctx, cluster); err != nil {
		if namespace == "" || !apierrors.IsForbidden(err) {
			return nil, err
		}
		note("note: you may not list ClusterBankConnections; showing the BankConnections of " + namespace + " only")
		report := groupByConnection(requests.Items, namespaced.Items, nil)
		// Unlisted is not missing: only the BankConnections named are known not to exist.
		report.MissingConnections = slices.DeleteFunc(report.MissingConnections, func(m missingConnection) bool {
			return m.Connection.Kind == tokensv1alpha1.KindClusterBankConnection
		})
		return report, nil
	}
	return groupByConnection(requests.Items, namespaced.Items, cluster.Items), nil
}

// groupByConnection summarises each connection with the requests that name it, in the order
// of namespace and name (ClusterBankConnections, which have none, first).
func groupByConnection(requests []tokensv1alpha1.BankTokenRequest, namespaced []tokensv1alpha1.BankConnection,
	cluster []tokensv1alpha1.ClusterBankConnection) *connectionsReport {
	users, holders := map[connectionKey][]string{}, map[connectionKey][]string{}
	for i := range requests {
		btr := &requests[i]
		key, ok := connectionOf(btr)
		switch {
		case !ok:
		case btr.Labels[tokensv1alpha1.SharedGrantLabel] == tokensv1alpha1.SharedGrantLabelValue:
			holders[key] = append(holders[key], btr.Namespace+"/"+btr.Name)
		default:
			users[key] = append(users[key], btr.Namespace+"/"+btr.Name)
		}
	}
	report := &connectionsReport{Connections: []connectionSummary{}}
	add := func(key connectionKey, spec *tokensv1alpha1.BankConnectionSpec, status tokensv1alpha1.BankConnectionStatus) {
		usedBy := append([]string{}, users[key]...)
		slices.Sort(usedBy)
		slices.Sort(holders[key])
		delete(users, key)
		report.Connections = append(report.Connections, connectionSummary{Kind: key.kind, Namespace: key.namespace, Name: key.name,
			Provider: spec.Provider, GrantSharing: spec.GrantSharing, CallBudget: spec.CallBudget, Status: status, UsedBy: usedBy,
			SharedGrants: holders[key]})
	}
	for i := range cluster {
		add(connectionKey{tokensv1alpha1.KindClusterBankConnection, "", cluster[i].Name}, &cluster[i].Spec, cluster[i].Status)
	}
	for i := range namespaced {
		add(connectionKey{tokensv1alpha1.KindBankConnection, namespaced[i].Namespace, namespaced[i].Name}, &namespaced[i].Spec, namespaced[i].Status)
	}
	slices.SortFunc(report.Connections, func(a, b connectionSummary) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind, b.Kind))
	})
	report.MissingConnections = missingConnections(users)
	return report
}

// connectionOf is the connection a request names, if it names one.
func connectionOf(btr *tokensv1alpha1.BankTokenRequest) (connectionKey, bool) {
	ref := btr.Spec.ConnectionRef
	if ref == nil {
		return connectionKey{}, false
	}
	if ref.KindOrDefault() == tokensv1alpha1.KindClusterBankConnection {
		return connectionKey{ref.Kind, "", ref.Name}, true
	}
	return connectionKey{ref.KindOrDefault(), btr.Namespace, ref.Name}, true
}

// missingConnections are the requests left in users once every existing connection took its own.
func missingConnections(users map[connectionKey][]string) []missingConnection {
	var missing []missingConnection
	for key, requests := range users {
		for _, request := range requests {
			missing = append(missing, missingConnection{Request: request,
				Connection: tokensv1alpha1.ConnectionReference{Kind: key.kind, Name: key.name}})
		}
	}
	slices.SortFunc(missing, func(a, b missingConnection) int { return cmp.Compare(a.Request, b.Request) })
	return missing
}
