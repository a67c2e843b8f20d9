package controller

import (
	"github.com/go-logr/logr"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// sendsInteractionID says whether calls for spec carry an x-fapi-interaction-id: as
// fapiInteractionID says, or, unset, when the provider is known as a FAPI server.
func sendsInteractionID(spec *tokensv1alpha1.BankTokenRequestSpec) bool {
	switch spec.FAPIInteractionID {
	case tokensv1alpha1.FAPIInteractionIDEnabled:
		return true
	case tokensv1alpha1.FAPIInteractionIDDisabled:
		return false
	}
	preset, ok := presetFor(spec)
	return ok && preset.FAPI
}

// interactionIDFor is a fresh x-fapi-interaction-id for one call, "" when spec sends none.
// Each call gets its own, made just before it is sent: it names that call to the bank.
func interactionIDFor(spec *tokensv1alpha1.BankTokenRequestSpec) string {
	if !sendsInteractionID(spec) {
		return ""
	}
	return providers.NewInteractionID()
}

// callOutcomeLog is where a call that went well is logged: at info level when it carried an
// interaction id, which the user turned on to find calls by; at debug level otherwise, so
// that a renewal adds no line to a default log where it added none before.
func callOutcomeLog(log logr.Logger, interactionID string) logr.Logger {
	if interactionID == "" {
		return log.V(1)
	}
	return log
}

// withInteractionID adds " (x-fapi-interaction-id …)" to a message about a call that sent one.
func withInteractionID(message, interactionID string) string {
	if interactionID == "" {
		return message
	}
	return message + " (" + providers.HeaderFAPIInteractionID + " " + interactionID + ")"
}

// interactionIDOf is the interaction id a call carried; "" when there was no call or none.
func interactionIDOf(attempt *tokensv1alpha1.TokenCallAttempt) string {
	if attempt == nil {
		return ""
	}
	return attempt.InteractionID
}
