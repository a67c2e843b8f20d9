package providers

import "slices"

// BodyEncoding is how the token request's parameters are encoded.
type BodyEncoding string

const (
	// BodyForm is application/x-www-form-urlencoded, as RFC 6749 §4 requires.
	BodyForm BodyEncoding = "Form"
	// BodyJSON is application/json, as RAKBANK's partner endpoint requires.
	BodyJSON BodyEncoding = "JSON"
)

// Header names the banks define.
const (
	HeaderIBMClientID     = "X-IBM-Client-Id"
	HeaderIBMClientSecret = "X-IBM-Client-Secret"
	HeaderMsgID           = "MsgId"
	HeaderMbanqTenant     = "tenantId"
)

// MaxPartnerScopeLength is the partner schema's maxLength for scope.
const MaxPartnerScopeLength = 500

// Preset is what a provider's token endpoint accepts. The API validation and the
// controller read it; the request builder obeys it.
type Preset struct {
	Name Name
	// DefaultGrant is used when Request.GrantType is empty.
	DefaultGrant GrantType
	// Grants are the primary grants the endpoint serves (never refresh_token).
	Grants []GrantType
	// SupportsRefresh says the endpoint takes grant_type=refresh_token.
	SupportsRefresh bool
	// DefaultClientAuthentication is used when Request.ClientAuthentication is empty.
	DefaultClientAuthentication ClientAuthentication
	ClientAuthentications       []ClientAuthentication
	Body                        BodyEncoding
	// ScopeRequired says an empty scope is refused before any call.
	ScopeRequired bool
	// MaxScopeLength is 0 when the bank sets no limit.
	MaxScopeLength int
	// RequiredHeaders must appear in Request.Headers (matched case-insensitively).
	RequiredHeaders []string
	// AcceptsMetadata says Request.Metadata is sent (as oauth_metadata).
	AcceptsMetadata bool
	// MessageIDHeader, when set, carries a fresh UUID on every call.
	MessageIDHeader string
}

var presets = map[Name]Preset{
	RAKBank: {
		Name:                        RAKBank,
		DefaultGrant:                GrantClientCredentials,
		Grants:                      []GrantType{GrantClientCredentials, GrantPassword},
		SupportsRefresh:             true,
		DefaultClientAuthentication: ClientAuthBasic,
		ClientAuthentications:       []ClientAuthentication{ClientAuthBasic, ClientAuthBody},
		Body:                        BodyForm,
		ScopeRequired:               true,
	},
	RAKBankPartner: {
		Name:                        RAKBankPartner,
		DefaultGrant:                GrantClientCredentials,
		Grants:                      []GrantType{GrantClientCredentials},
		DefaultClientAuthentication: ClientAuthHeaders,
		ClientAuthentications:       []ClientAuthentication{ClientAuthHeaders},
		Body:                        BodyJSON,
		ScopeRequired:               true,
		MaxScopeLength:              MaxPartnerScopeLength,
		AcceptsMetadata:             true,
		MessageIDHeader:             HeaderMsgID,
	},
	Banfico: {
		Name:                        Banfico,
		DefaultGrant:                GrantClientCredentials,
		Grants:                      []GrantType{GrantClientCredentials},
		SupportsRefresh:             true, // Keycloak offline tokens
		DefaultClientAuthentication: ClientAuthBasic,
		ClientAuthentications:       []ClientAuthentication{ClientAuthBasic},
		Body:                        BodyForm,
	},
	Mbanq: {
		Name:                        Mbanq,
		DefaultGrant:                GrantPassword,
		Grants:                      []GrantType{GrantPassword},
		SupportsRefresh:             true,
		DefaultClientAuthentication: ClientAuthBody,
		ClientAuthentications:       []ClientAuthentication{ClientAuthBody},
		Body:                        BodyForm,
		RequiredHeaders:             []string{HeaderMbanqTenant},
	},
	Paymob: {
		Name:                        Paymob,
		DefaultGrant:                GrantPassword,
		Grants:                      []GrantType{GrantPassword},
		SupportsRefresh:             true,
		DefaultClientAuthentication: ClientAuthBasic,
		ClientAuthentications:       []ClientAuthentication{ClientAuthBasic, ClientAuthBody},
		Body:                        BodyForm,
	},
	OAuth2: {
		Name:                        OAuth2,
		DefaultGrant:                GrantClientCredentials,
		Grants:                      []GrantType{GrantClientCredentials, GrantPassword},
		SupportsRefresh:             true,
		DefaultClientAuthentication: ClientAuthBasic,
		ClientAuthentications:       []ClientAuthentication{ClientAuthBasic, ClientAuthBody},
		Body:                        BodyForm,
	},
}

// Names lists every provider, in a stable order.
func Names() []Name {
	return []Name{RAKBank, RAKBankPartner, Banfico, Mbanq, Paymob, OAuth2}
}

// PresetFor returns the provider's preset. The slices are copies: callers may keep them.
func PresetFor(name Name) (Preset, bool) {
	p, ok := presets[name]
	if !ok {
		return Preset{}, false
	}
	p.Grants = slices.Clone(p.Grants)
	p.ClientAuthentications = slices.Clone(p.ClientAuthentications)
	p.RequiredHeaders = slices.Clone(p.RequiredHeaders)
	return p, true
}

// SupportsGrant reports whether g is one of the preset's primary grants.
func (p Preset) SupportsGrant(g GrantType) bool { return slices.Contains(p.Grants, g) }

// SupportsClientAuthentication reports whether the endpoint accepts a.
func (p Preset) SupportsClientAuthentication(a ClientAuthentication) bool {
	return slices.Contains(p.ClientAuthentications, a)
}
