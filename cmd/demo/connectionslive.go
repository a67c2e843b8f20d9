package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
)

// tenantRow is what the table shows of one request through the shared connection. Nothing
// in it is a token or a secret.
type tenantRow struct {
	tenant
	ready, reason, message string
	// stalled is the Stalled condition's reason; "" while the request is not stalled.
	stalled string
	expires time.Time
	// writes counts the operator's events that say it wrote a token to the request's Secret.
	writes     int
	tokenHash  string
	tokenValid bool
}

func (r tenantRow) refreshes() int { return max(r.writes-1, 0) }

// sharedView is what the demo sees of the shared connection scene at one moment.
type sharedView struct {
	rows []tenantRow
	// bankCalls and bankAccepted count the token calls the bank saw from the shared client:
	// the bank cannot see namespaces, only the client.
	bankCalls, bankAccepted int
}

// observeShared reads each tenant's request, events and output Secret, then the bank's
// calls from the shared client: a call made in between shows as a call with no token
// written yet, which the verdict looks at again.
func (d *demo) observeShared(ctx context.Context) (sharedView, error) {
	var v sharedView
	for _, t := range tenants {
		r, err := d.observeTenant(ctx, t)
		if err != nil {
			return v, err
		}
		v.rows = append(v.rows, r)
	}
	for _, c := range d.bank.CallsFrom(sharedBank, sharedClientID) {
		v.bankCalls++
		if c.Accepted() {
			v.bankAccepted++
		}
	}
	return v, nil
}

func (d *demo) observeTenant(ctx context.Context, t tenant) (tenantRow, error) {
	r := tenantRow{tenant: t}
	btr := &tokensv1alpha1.BankTokenRequest{}
	if err := d.k8s.Get(ctx, types.NamespacedName{Namespace: t.namespace, Name: t.request}, btr); err != nil {
		return r, err
	}
	if c := meta.FindStatusCondition(btr.Status.Conditions, tokensv1alpha1.ConditionReady); c != nil {
		r.ready, r.reason, r.message = string(c.Status), c.Reason, c.Message
	}
	if c := meta.FindStatusCondition(btr.Status.Conditions, tokensv1alpha1.ConditionStalled); c != nil && c.Status == metav1.ConditionTrue {
		r.stalled = c.Reason
	}
	if btr.Status.ExpiresAt != nil {
		r.expires = btr.Status.ExpiresAt.Time
	}
	events := &eventsv1.EventList{}
	if err := d.k8s.List(ctx, events, client.InNamespace(t.namespace)); err != nil {
		return r, err
	}
	var about []eventsv1.Event
	for _, e := range events.Items {
		if e.Regarding.Kind == "BankTokenRequest" {
			about = append(about, e)
		}
	}
	r.writes, _ = tokenWrites(about, t.request)
	secret := &corev1.Secret{}
	err := d.k8s.Get(ctx, types.NamespacedName{Namespace: t.namespace, Name: t.secretName()}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return r, nil
	case err != nil:
		return r, err
	}
	if tok := secret.Data[tokensv1alpha1.SecretKeyAccessToken]; len(tok) > 0 {
		r.tokenHash, r.tokenValid = shortHash(tok), d.bank.AccessTokenValid(sharedBank, string(tok))
	}
	return r, nil
}

// sharedTableLines is the shared connection's part of the table, 110 columns wide at most
// (what an 80-column terminal cuts is the expiry, refreshes and token).
func sharedTableLines(v sharedView, at time.Time) []string {
	lines := wrap(fmt.Sprintf("ClusterBankConnection %s: %s client %s, its Secret only in %s; admits namespaces "+
		"labelled %s=%s (team-a, team-b, not team-c) and scopes %s", sharedConnectionName, sharedBank, sharedClientID,
		operatorNamespace, admissionLabel, admittedValue, strings.Join(sharedScopes, " ")), 100, "  ")
	lines = append(lines, fmt.Sprintf("%-16s  %-14s  %-5s  %-20s  %-7s  %-7s  %-9s  %s",
		"REQUEST", "CONNECTION", "READY", "REASON", "STALLED", "EXPIRES", "REFRESHES", "TOKEN"))
	written := make([]string, 0, len(v.rows))
	for _, r := range v.rows {
		lines = append(lines, fmt.Sprintf("%-16s  %-14s  %-5s  %-20s  %-7s  %-7s  %-9d  %s",
			r.tenant, sharedConnectionName, dash(r.ready), dash(r.reason), stalledCell(r.stalled),
			expiresIn(r.expires, at), r.refreshes(), tokenCell(r.tokenHash, r.tokenValid)))
		written = append(written, fmt.Sprintf("%s %d", r.namespace, r.writes))
	}
	lines = append(lines, wrap(fmt.Sprintf("%s: %s (%d accepted) from the shared client; tokens written: %s", sharedBank,
		plural(v.bankCalls, "call", "calls"), v.bankAccepted, strings.Join(written, ", ")), 100, "  ")...)
	for _, r := range v.rows {
		if r.stalled != "" {
			lines = append(lines, wrap(r.tenant.String()+": "+r.message, 100, "  ")...)
		}
	}
	return lines
}

func stalledCell(reason string) string {
	if reason == "" {
		return "-"
	}
	return "True"
}

// wrap breaks text at spaces into lines of at most width runes, the later ones indented.
func wrap(text string, width int, indent string) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len([]rune(line))+1+len([]rune(word)) > width:
			lines = append(lines, line)
			line = indent + word
		default:
			line += " " + word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
