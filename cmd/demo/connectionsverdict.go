package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// check is one line of the verdict.
type check struct {
	ok   bool
	text string
}

// secretScan is where the shared client's secret was found among the Secrets of the
// operator's namespace and the tenants'.
type secretScan struct {
	scanned int
	// holders are the Secrets ("namespace/name") whose data holds the client secret.
	holders []string
}

// judgeShared is the verdict on the requests of the shared connection scene: each admitted
// request holds a token the bank accepts in its own namespace; the refused one is Stalled
// NamespaceNotAdmitted and was given nothing; and every call the bank saw from the shared
// client is a token written for an admitted request, so none was made for the refused one.
// judgeSecretHolders checks where the client secret is.
func judgeShared(v sharedView) []check {
	var checks []check
	for _, r := range v.rows {
		if r.admitted {
			checks = append(checks, judgeAdmitted(r))
		} else {
			checks = append(checks, judgeRefused(r))
		}
	}
	return append(checks, judgeBankCalls(v))
}

// tenantColumns starts a verdict line on a request as the banks' lines start.
func tenantColumns(r tenantRow) string {
	return fmt.Sprintf("%-26s %-15s ", r.tenant, sharedConnectionName)
}

func judgeAdmitted(r tenantRow) check {
	var problems []string
	if r.ready != "True" {
		problems = append(problems, fmt.Sprintf("Ready is %s (%s: %s)", dash(r.ready), dash(r.reason), r.message))
	}
	switch {
	case r.tokenHash == "":
		problems = append(problems, fmt.Sprintf("no token in Secret %s/%s", r.namespace, r.secretName()))
	case !r.tokenValid:
		problems = append(problems, fmt.Sprintf("%s does not accept the token in Secret %s/%s", sharedBank, r.namespace, r.secretName()))
	}
	if len(problems) > 0 {
		return check{false, tenantColumns(r) + strings.Join(problems, "; ")}
	}
	return check{true, tenantColumns(r) + fmt.Sprintf("Ready (%s), %s, the token in Secret %s/%s is accepted by %s",
		r.reason, plural(r.refreshes(), "refresh", "refreshes"), r.namespace, r.secretName(), sharedBank)}
}

func judgeRefused(r tenantRow) check {
	ok := r.stalled == tokensv1alpha1.ReasonNamespaceNotAdmitted && r.ready == "False" && r.tokenHash == "" && r.writes == 0
	text := fmt.Sprintf("Stalled %s, Ready %s", dash(r.stalled), dash(r.ready))
	switch {
	case r.tokenHash != "":
		text += fmt.Sprintf(", yet Secret %s/%s holds a token", r.namespace, r.secretName())
	case r.writes > 0:
		text += fmt.Sprintf(", yet %s written", plural(r.writes, "token", "tokens"))
	default:
		text += ", no token written"
	}
	return check{ok, tenantColumns(r) + text}
}

// judgeBankCalls: the bank cannot see namespaces, so the refused request's share of the
// shared client's calls is what the admitted requests' tokens leave: each token written is
// one accepted call (PerRequest grants), and nothing may be left over.
func judgeBankCalls(v sharedView) check {
	written := 0
	var admitted, refused []string
	for _, r := range v.rows {
		if r.admitted {
			written += r.writes
			admitted = append(admitted, fmt.Sprintf("%s (%d)", r.namespace, r.writes))
		} else {
			refused = append(refused, r.namespace)
		}
	}
	ok := v.bankCalls == written && v.bankAccepted == v.bankCalls
	text := fmt.Sprintf("%s saw %s from the shared client, %d accepted, for %s written in %s",
		sharedBank, plural(v.bankCalls, "call", "calls"), v.bankAccepted,
		plural(written, "token", "tokens"), strings.Join(admitted, " and "))
	if ok {
		text += ": 0 calls for " + strings.Join(refused, " and ")
	}
	return check{ok, text}
}

func judgeSecretHolders(scan secretScan) check {
	want := operatorNamespace + "/" + sharedCredentialsName
	var tenantHolders []string
	for _, h := range scan.holders {
		if h != want {
			tenantHolders = append(tenantHolders, h)
		}
	}
	switch {
	case len(tenantHolders) > 0:
		return check{false, fmt.Sprintf("the client secret is in %s", strings.Join(tenantHolders, ", "))}
	case !slices.Contains(scan.holders, want):
		// Nothing found, not even where it is: the scan would not have seen a copy either.
		return check{false, fmt.Sprintf("the scan of %d Secrets did not find the client secret even in %s", scan.scanned, want)}
	}
	return check{true, fmt.Sprintf("no Secret in %s holds the client secret (%d scanned; only %s does)",
		strings.Join(tenantNamespaces(), ", "), scan.scanned, want)}
}

// secretsHolding are the Secrets ("namespace/name") with a data value that contains value.
func secretsHolding(secrets []corev1.Secret, value []byte) []string {
	var out []string
	for _, s := range secrets {
		for _, data := range s.Data {
			if bytes.Contains(data, value) {
				out = append(out, s.Namespace+"/"+s.Name)
				break
			}
		}
	}
	return out
}

// scanForClientSecret searches the Secrets of the operator's namespace and the tenants'
// for the shared client's secret.
func (d *demo) scanForClientSecret(ctx context.Context) (secretScan, error) {
	var scan secretScan
	for _, ns := range append([]string{operatorNamespace}, tenantNamespaces()...) {
		list := &corev1.SecretList{}
		if err := d.k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
			return scan, err
		}
		scan.scanned += len(list.Items)
		scan.holders = append(scan.holders, secretsHolding(list.Items, []byte(d.shared.clientSecret))...)
	}
	return scan, nil
}

func tenantNamespaces() []string {
	out := make([]string, 0, len(tenants))
	for _, t := range tenants {
		out = append(out, t.namespace)
	}
	return out
}

// summarizeShared prints the verdict on the shared connection scene. A renewal between
// reading the events and the bank shows as a call with no token written: look again
// briefly before calling the account wrong.
func (d *demo) summarizeShared(v *verdict, s snapshot) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	view := s.shared
	for i := 0; i < 6 && !judgeBankCalls(view).ok; i++ {
		time.Sleep(500 * time.Millisecond)
		if again, err := d.observeShared(ctx); err == nil {
			view = again
		}
	}
	for _, c := range judgeShared(view) {
		fmt.Printf("  %s %s\n", v.mark(c.ok), c.text)
	}
	scan, err := d.scanForClientSecret(ctx)
	if err != nil {
		fmt.Printf("  %s scanning the tenants' Secrets for the client secret failed: %v\n", v.mark(false), err)
		return
	}
	c := judgeSecretHolders(scan)
	fmt.Printf("  %s %s\n", v.mark(c.ok), c.text)
}
