package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/callbudget"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// What a connection's status says, derived from what the operator can read: its Secrets
// (read as a request's reconcile reads them, by gather's own readers), the requests that
// name it (judged by the request reconciler's own gates, and their status for the last
// failure, so that it survives a restart), and its call budget.

// maxStatusNamespaces bounds status.namespaces.
const maxStatusNamespaces = 50

// scopeStandIn passes any provider's scope rule (one required, a maximum length) when the
// client alone is checked: the scope is each request's, judged by the gates.
const scopeStandIn = "openid"

// connectionView is one reading of a connection.
type connectionView struct {
	// credentialsProblem says why the client cannot authenticate; nil when it can.
	credentialsProblem *inputProblem
	// endpointProblem: the endpoint is refused (http without --allow-insecure-endpoints),
	// or the issuer's metadata gives none the client can use.
	endpointProblem *inputProblem
	// endpoints are what the issuer's metadata gave; nil without an issuer.
	endpoints *tokensv1alpha1.EndpointsStatus
	usage     connectionUsage
	budget    callbudget.Snapshot
}

// connectionUsage is what the requests that name a connection say of it.
type connectionUsage struct {
	admitted, refused int32
	namespaces        []string
	// lastFailure is the newest failed token call their status records.
	lastFailure *tokensv1alpha1.ConnectionFailure
}

// connectionIssuer is what a connection's issuer metadata gave: the endpoints its requests
// use, or why none can be used (a method or algorithm not listed, metadata unreadable).
type connectionIssuer struct {
	problem *inputProblem
	status  tokensv1alpha1.EndpointsStatus
}

// checkCredentials reads the Secrets conn names as a request's reconcile would, then checks
// that what they hold can authenticate the client: the key signs, the certificate and its
// key are a pair. A connection that names an issuer also gets its metadata read (from the
// cache its requests share), over the TLS material read. An error is a failure to read.
func (r *BankTokenRequestReconciler) checkCredentials(ctx context.Context, conn *resolvedConnection) (*inputProblem, *connectionIssuer, error) {
	btr := &tokensv1alpha1.BankTokenRequest{ObjectMeta: metav1.ObjectMeta{Namespace: conn.SecretsNamespace, Name: conn.Name},
		Spec: tokensv1alpha1.BankTokenRequestSpec{BankClient: conn.Spec.BankClient, Scope: scopeStandIn}}
	g := &gathered{Request: btr, Connection: conn}
	_, err := r.readClient(ctx, btr, g)
	var problem *inputProblem
	if errors.As(err, &problem) {
		return problem, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var issuer *connectionIssuer
	if btr.Spec.Issuer != "" {
		issuer = &connectionIssuer{problem: r.resolveIssuer(ctx, btr, g)}
		if g.Issuer != nil {
			issuer.status = g.Issuer.status
		}
		if issuer.problem != nil {
			// Without the endpoints there is no request to check; the Secrets were read.
			return nil, issuer, nil
		}
	}
	req := r.providerRequest(btr, g)
	req.AllowInsecureHTTP = true // the endpoint is judged apart (endpointProblem)
	if err := providers.Check(req); err != nil {
		failure := asFailure(err)
		return &inputProblem{failure.Reason, failure.Message}, issuer, nil
	}
	if clientTLS := conn.Spec.TLS; clientTLS != nil && clientTLS.ClientCertificateSecretRef != nil {
		return certificatePairProblem(req.TLS, conn.SecretsNamespace, clientTLS.ClientCertificateSecretRef.Name), issuer, nil
	}
	return nil, issuer, nil
}

// certificatePairProblem: the client certificate Secret must hold a certificate and the
// key that matches it. crypto/tls's errors name the structure at fault, never the key.
func certificatePairProblem(material providers.TLSMaterial, namespace, name string) *inputProblem {
	if _, err := tls.X509KeyPair(material.ClientCertificate, []byte(material.ClientKey.Reveal())); err != nil {
		return &inputProblem{providers.ReasonInvalidTLSConfig, fmt.Sprintf(
			"client certificate Secret %s/%s does not hold a certificate and its key: %v", namespace, name, err)}
	}
	return nil
}

// usageOf counts the requests that name conn: admitted by its gates or refused, the
// namespaces of those admitted, and the newest failed call their status records (or
// earlier, the one status already shows). The holders of its shared grants are the
// operator's, not users: they are not counted, but their failures are the connection's.
func (r *BankTokenRequestReconciler) usageOf(ctx context.Context, conn *resolvedConnection, requests []tokensv1alpha1.BankTokenRequest,
	shown *tokensv1alpha1.ConnectionFailure) (connectionUsage, error) {
	usage := connectionUsage{lastFailure: shown}
	namespaces := map[string]bool{}
	for i := range requests {
		btr := &requests[i]
		if !btr.DeletionTimestamp.IsZero() {
			continue
		}
		usage.lastFailure = newerFailure(usage.lastFailure, btr)
		if r.isSharedGrantHolder(btr) {
			continue
		}
		refusal, err := r.judgeGates(ctx, btr, conn)
		if err != nil {
			return usage, err
		}
		if refusal != nil {
			usage.refused++
		} else {
			usage.admitted++
			namespaces[btr.Namespace] = true
		}
	}
	usage.namespaces = slices.Sorted(maps.Keys(namespaces))
	if len(usage.namespaces) > maxStatusNamespaces {
		usage.namespaces = usage.namespaces[:maxStatusNamespaces]
	}
	return usage, nil
}

// newerFailure is btr's last failure, as its Ready condition words it, when newer than last.
func newerFailure(last *tokensv1alpha1.ConnectionFailure, btr *tokensv1alpha1.BankTokenRequest) *tokensv1alpha1.ConnectionFailure {
	at := btr.Status.LastFailureTime
	if at == nil || (last != nil && !at.After(last.Time.Time)) {
		return last
	}
	failure := &tokensv1alpha1.ConnectionFailure{Time: *at, Request: requesterOf(btr)}
	if ready := meta.FindStatusCondition(btr.Status.Conditions, tokensv1alpha1.ConditionReady); ready != nil {
		failure.Reason, failure.Message = ready.Reason, ready.Message
	}
	return failure
}

// status is the connection's status as view reads it, for generation.
func (v connectionView) status(generation int64, conditions []metav1.Condition) tokensv1alpha1.BankConnectionStatus {
	status := tokensv1alpha1.BankConnectionStatus{
		ObservedGeneration: generation,
		Conditions:         slices.Clone(conditions),
		Requests:           v.usage.admitted,
		Namespaces:         v.usage.namespaces,
		RefusedRequests:    v.usage.refused,
		Budget:             v.budget.Status(),
		LastFailure:        v.usage.lastFailure,
		Endpoints:          v.endpoints,
	}
	v.setConditions(&status.Conditions, generation)
	return status
}

// setConditions: CredentialsReady from the Secrets; Ready from the credentials, the
// endpoint and the bank's pause, with the first cause as its reason.
func (v connectionView) setConditions(conditions *[]metav1.Condition, generation int64) {
	set := func(conditionType string, status metav1.ConditionStatus, reason, message string) {
		meta.SetStatusCondition(conditions, metav1.Condition{Type: conditionType, Status: status, Reason: reason,
			Message: message, ObservedGeneration: generation})
	}
	if p := v.credentialsProblem; p != nil {
		set(tokensv1alpha1.ConditionCredentialsReady, metav1.ConditionFalse, p.Reason, p.Message)
		set(tokensv1alpha1.ConditionReady, metav1.ConditionFalse, p.Reason, "its credentials are not ready: "+p.Message)
		return
	}
	set(tokensv1alpha1.ConditionCredentialsReady, metav1.ConditionTrue, tokensv1alpha1.ReasonCredentialsFound,
		"its Secrets exist and hold what its client authentication needs")
	switch {
	case v.endpointProblem != nil:
		set(tokensv1alpha1.ConditionReady, metav1.ConditionFalse, v.endpointProblem.Reason, v.endpointProblem.Message)
	case !v.budget.PausedUntil.IsZero():
		set(tokensv1alpha1.ConditionReady, metav1.ConditionFalse, tokensv1alpha1.ReasonConnectionPaused, fmt.Sprintf(
			"the bank answered %s (429 or Retry-After): no token call goes through it until %s",
			v.budget.PauseReason, formatTime(v.budget.PausedUntil)))
	default:
		set(tokensv1alpha1.ConditionReady, metav1.ConditionTrue, tokensv1alpha1.ReasonConnectionReady,
			"its credentials are ready and the bank has not paused it")
	}
}

// nextLook is when the view changes by the clock alone: the pause's end, or a call leaving
// the window; zero when nothing does.
func (v connectionView) nextLook(now time.Time, refresh time.Duration) time.Time {
	next := time.Time{}
	if v.budget.Calls > 0 || v.credentialsProblem != nil {
		next = now.Add(refresh)
	}
	if paused := v.budget.PausedUntil; !paused.IsZero() && (next.IsZero() || paused.Before(next)) {
		next = paused
	}
	return next
}
