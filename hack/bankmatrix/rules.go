package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// rule is one CEL XValidation rule and the message the apiserver returns when it fails.
type rule struct{ cel, message string }

func (r rule) marker() string {
	return fmt.Sprintf("// +kubebuilder:validation:XValidation:rule=%q,message=%q", r.cel, r.message)
}

// specRules are BankTokenRequestSpec's rules: for each provider, what its preset refuses.
// Each rule mirrors one check of the providers package's plan, so that admission and the
// request builder agree (api/v1alpha1's contract test runs every combination through both).
func specRules() []rule {
	return guarded(providerRules(true))
}

// connectionRules are BankConnectionSpec's rules: the same, but for the scope, which is each
// request's own (the controller checks it against the connection's provider).
func connectionRules() []rule {
	return guarded(providerRules(false))
}

func providerRules(withScope bool) []rule {
	var rules []rule
	for _, name := range providers.Names() {
		p, _ := providers.PresetFor(name)
		rules = append(rules, grantRules(p)...)
		rules = append(rules, clientAuthenticationRules(p)...)
		if withScope {
			rules = append(rules, scopeRules(p)...)
		}
		rules = append(rules, requiredHeaderRules(p)...)
	}
	rules = append(rules, queryRules()...)
	return append(rules, metadataRule(), tokenRequestParametersRule(), revocationRule(), issuerRule())
}

// guarded lets each rule pass when the fields it reads are absent: a request that names a
// connection has no provider or endpoint of its own (the rules that require them, and that
// refuse them beside a connectionRef, are written by hand beside these). CEL fails a rule
// that reads an absent field rather than treating it as empty.
func guarded(rules []rule) []rule {
	for i, r := range rules {
		for _, field := range []string{"endpoint", "provider"} {
			if strings.Contains(r.cel, "self."+field) && !strings.HasPrefix(r.cel, "!has(self."+field+") || ") {
				r.cel = "!has(self." + field + ") || " + r.cel
			}
		}
		rules[i] = r
	}
	return rules
}

// providersWhere lists, in table order, the providers whose preset has a property.
func providersWhere(has func(providers.Preset) bool) []providers.Name {
	var names []providers.Name
	for _, name := range providers.Names() {
		if p, _ := providers.PresetFor(name); has(p) {
			names = append(names, name)
		}
	}
	return names
}

// revocationRule admits a revocation endpoint only where refresh tokens are used: a
// provider without the refresh_token grant has nothing to revoke.
func revocationRule() rule {
	refreshing := providersWhere(func(p providers.Preset) bool { return p.SupportsRefresh })
	return rule{
		cel:     fmt.Sprintf("!has(self.revocationEndpoint) || self.provider in %s", celList(refreshing)),
		message: fmt.Sprintf("revocationEndpoint is used only by provider %s: the others issue no refresh token to revoke", orList(refreshing)),
	}
}

func grantRules(p providers.Preset) []rule {
	return onlyRule(p.Name, "grantType", p.Grants, providers.PrimaryGrants())
}

func clientAuthenticationRules(p providers.Preset) []rule {
	return onlyRule(p.Name, "clientAuthentication", p.ClientAuthentications, providers.ClientAuthentications())
}

// onlyRule limits an optional enum field to the values the provider accepts; none is needed
// when it accepts them all.
func onlyRule[T ~string](provider providers.Name, field string, accepted, all []T) []rule {
	if len(accepted) == len(all) {
		return nil
	}
	return []rule{{
		cel:     fmt.Sprintf("self.provider != '%s' || !has(self.%s) || self.%s in %s", provider, field, field, celList(accepted)),
		message: fmt.Sprintf("provider %s supports only %s %s", provider, field, orList(accepted)),
	}}
}

// scopeRules count characters as the provider does: size() of a CEL string is its number of
// code points, and trim() drops the same Unicode white space as strings.TrimSpace.
func scopeRules(p providers.Preset) []rule {
	var conditions []string
	var message string
	switch {
	case p.ScopeRequired && p.MaxScopeLength > 0:
		conditions = []string{"has(self.scope)", "self.scope.trim() != ''", fmt.Sprintf("size(self.scope) <= %d", p.MaxScopeLength)}
		message = fmt.Sprintf("provider %s needs a scope of 1 to %d characters, not only spaces", p.Name, p.MaxScopeLength)
	case p.ScopeRequired:
		conditions = []string{"has(self.scope)", "self.scope.trim() != ''"}
		message = fmt.Sprintf("provider %s needs a scope, not only spaces", p.Name)
	case p.MaxScopeLength > 0:
		conditions = []string{fmt.Sprintf("(!has(self.scope) || size(self.scope) <= %d)", p.MaxScopeLength)}
		message = fmt.Sprintf("provider %s accepts a scope of at most %d characters", p.Name, p.MaxScopeLength)
	default:
		return nil
	}
	return []rule{{
		cel:     fmt.Sprintf("self.provider != '%s' || (%s)", p.Name, strings.Join(conditions, " && ")),
		message: message,
	}}
}

// requiredHeaderRules match names case-insensitively and demand a value, as the provider does.
// lowerAscii is enough: the schema allows only ASCII token characters in a header name.
// A header whose value the endpoint's query may carry instead is satisfied by either.
// String functions, not url(): the apiserver's cost estimate of url() at the spec's level
// exceeds the CRD's budget.
func requiredHeaderRules(p providers.Preset) []rule {
	var rules []rule
	for _, h := range p.RequiredHeaders {
		r := rule{
			cel:     fmt.Sprintf("self.provider != '%s' || (has(self.headers) && self.headers.exists(h, h.name.lowerAscii() == '%s' && h.value != ''))", p.Name, strings.ToLower(h)),
			message: fmt.Sprintf("provider %s needs a %s header with a value", p.Name, h),
		}
		if param := p.HeaderQueryParameters[h]; param != "" {
			r.cel += fmt.Sprintf(" || self.endpoint.matches('[?]%s=[^&#]+')", param)
			r.message += fmt.Sprintf(", or the endpoint's query parameter %s", param)
		}
		rules = append(rules, r)
	}
	return rules
}

// queryRules refuse a query string in the endpoint, but for the one parameter a provider
// may take there instead of a required header.
func queryRules() []rule {
	allowing := providersWhere(func(p providers.Preset) bool { return len(p.HeaderQueryParameters) > 0 })
	var rules []rule
	for _, name := range allowing {
		p, _ := providers.PresetFor(name)
		params := slices.Sorted(maps.Values(p.HeaderQueryParameters))
		rules = append(rules, rule{
			cel: fmt.Sprintf("self.provider != '%s' || !self.endpoint.contains('?') || self.endpoint.matches('^[^?#]*[?](%s)=[^&#]*$')",
				name, strings.Join(params, "|")),
			message: fmt.Sprintf("provider %s's endpoint may carry only the query parameter %s", name, strings.Join(params, " or ")),
		})
	}
	return append(rules, rule{
		cel:     fmt.Sprintf("self.provider in %s || !self.endpoint.contains('?')", celList(allowing)),
		message: "endpoint must not carry a query string: credentials and parameters go in the request, not the URL",
	})
}

// issuerRule admits an issuer only where the provider's servers publish metadata: the
// others' endpoints are typed by hand.
func issuerRule() rule {
	publishing := providersWhere(func(p providers.Preset) bool { return p.PublishesMetadata })
	return rule{
		cel:     fmt.Sprintf("!has(self.issuer) || self.provider in %s", celList(publishing)),
		message: fmt.Sprintf("issuer (authorization server metadata) is used only by provider %s: the others publish none", orList(publishing)),
	}
}

func metadataRule() rule {
	accepting := providersWhere(func(p providers.Preset) bool { return p.AcceptsMetadata })
	return rule{
		cel:     fmt.Sprintf("!has(self.metadata) || size(self.metadata) == 0 || self.provider in %s", celList(accepting)),
		message: fmt.Sprintf("metadata (oauth_metadata) is sent only by provider %s", orList(accepting)),
	}
}

// tokenRequestParametersRule admits extra token-request parameters only where they are sent.
func tokenRequestParametersRule() rule {
	accepting := providersWhere(func(p providers.Preset) bool { return p.AcceptsTokenRequestParameters })
	return rule{
		cel:     fmt.Sprintf("!has(self.tokenRequestParameters) || size(self.tokenRequestParameters) == 0 || self.provider in %s", celList(accepting)),
		message: fmt.Sprintf("tokenRequestParameters are sent only by provider %s: the others' documents list every field they take", orList(accepting)),
	}
}

// reservedParameterRule is TokenRequestParameter's rule: the body parameters the request
// builder sets itself, compared case-insensitively as the providers package does.
func reservedParameterRule() rule {
	return rule{
		cel:     fmt.Sprintf("!(self.name.lowerAscii() in %s)", celList(providers.ReservedTokenRequestParameters())),
		message: "this parameter is set by the operator and cannot be overridden",
	}
}

// reservedHeaderRule is HTTPHeader's rule: the headers the request builder sets itself.
func reservedHeaderRule() rule {
	names := providers.ReservedHeaders()
	for i, n := range names {
		names[i] = strings.ToLower(n)
	}
	return rule{
		cel:     fmt.Sprintf("!(self.name.lowerAscii() in %s)", celList(names)),
		message: "this header is set by the operator and cannot be overridden",
	}
}

func celList[T ~string](values []T) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = "'" + string(v) + "'"
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

func orList[T ~string](values []T) string {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// enumMarker lists the values an enum type accepts.
func enumMarker[T ~string](values []T) string {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return "// +kubebuilder:validation:Enum=" + strings.Join(s, ";")
}
