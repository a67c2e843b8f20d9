package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// The gates a connection keeps: who may use it (a ClusterBankConnection's namespaces) and
// for what (its scopes, and its provider's scope rules, which the CRD cannot check on a
// request whose provider lies in another object). A request outside a gate is refused
// before anything is read or sent, and loses what it held (see accessloss.go).

// accessRefusal is why a request may not use the connection it names: a reason for its
// conditions and a message that names the connection and the rule.
type accessRefusal struct {
	Reason  string
	Message string
}

// judgeGates says whether btr may use conn; nil when it may. An error is a failure to read
// the cache. A shared grant's holder, in the cluster connection namespace, is not judged by
// namespace (its consumers are), but is by scope.
func (r *BankTokenRequestReconciler) judgeGates(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, conn *resolvedConnection) (*accessRefusal, error) {
	if conn.Kind == tokensv1alpha1.KindClusterBankConnection && !r.isSharedGrantHolder(btr) {
		why, err := r.namespaceRefused(ctx, btr.Namespace, conn.Spec.AllowedNamespaces)
		if err != nil {
			return nil, err
		}
		if why != "" {
			return &accessRefusal{tokensv1alpha1.ReasonNamespaceNotAdmitted,
				fmt.Sprintf("%s does not admit namespace %s: %s", conn, btr.Namespace, why)}, nil
		}
	}
	if refusal := scopeRefused(conn, btr.Spec.Scope); refusal != nil {
		return refusal, nil
	}
	if err := providers.CheckScope(providers.Name(conn.Spec.Provider), btr.Spec.Scope); err != nil {
		return &accessRefusal{tokensv1alpha1.ReasonInvalidScope, fmt.Sprintf("spec.scope does not suit the provider of %s: %s",
			conn, asFailure(err).Message)}, nil
	}
	return nil, nil
}

// namespaceRefused says why gate does not admit namespace, "" when it does: by name, or by
// the selector on the Namespace's labels (from the manager's metadata cache). No gate
// admits no namespace: a ClusterBankConnection is shared only on purpose.
func (r *BankTokenRequestReconciler) namespaceRefused(ctx context.Context, namespace string, gate *tokensv1alpha1.NamespaceGate) (string, error) {
	switch {
	case gate == nil:
		return "it has no allowedNamespaces, and admits no namespace without them", nil
	case slices.Contains(gate.Names, namespace):
		return "", nil
	case gate.Selector == nil:
		return "the namespace is not listed in allowedNamespaces.names", nil
	}
	selector, err := metav1.LabelSelectorAsSelector(gate.Selector)
	if err != nil {
		return "allowedNamespaces.selector is not a valid label selector: " + err.Error(), nil
	}
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := r.Client.Get(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return "the namespace does not exist", nil
		}
		return "", fmt.Errorf("reading namespace %s: %w", namespace, err)
	}
	if selector.Matches(labels.Set(ns.Labels)) {
		return "", nil
	}
	return fmt.Sprintf("the namespace is not listed in allowedNamespaces.names, and its labels do not match "+
		"allowedNamespaces.selector (%s)", selector), nil
}

// scopeRefused refuses a scope with a value conn's allowedScopes does not list; nil when
// every value is listed, or the connection lists none (any scope then).
func scopeRefused(conn *resolvedConnection, scope string) *accessRefusal {
	allowed := conn.Spec.AllowedScopes
	if len(allowed) == 0 {
		return nil
	}
	values := strings.Fields(scope)
	if len(values) == 0 {
		return &accessRefusal{tokensv1alpha1.ReasonScopeNotAdmitted, fmt.Sprintf(
			"%s admits only the scopes in its allowedScopes (%s), and spec.scope is empty", conn, strings.Join(allowed, " "))}
	}
	for _, v := range values {
		if !slices.Contains(allowed, v) {
			return &accessRefusal{tokensv1alpha1.ReasonScopeNotAdmitted, fmt.Sprintf(
				"%s does not admit the scope %q: its allowedScopes are %s", conn, v, strings.Join(allowed, " "))}
		}
	}
	return nil
}
