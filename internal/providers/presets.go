package providers

import (
	"maps"
	"slices"
)

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
	// QueryMbanqTenant carries the tenant in the token URL instead of the tenantId header.
	QueryMbanqTenant = "tenantIdentifier"
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
	// RefreshRevokesAccessToken says a refresh revokes, at once, the access token issued
	// with the refresh token it spends (Django OAuth Toolkit; Spring's OAuth2 token services).
	// A workload still holding that token is then cut off, so the caller must never refresh
	// the chain whose access token is published.
	RefreshRevokesAccessToken bool
	// DefaultClientAuthentication is used when Request.ClientAuthentication is empty.
	DefaultClientAuthentication ClientAuthentication
	ClientAuthentications       []ClientAuthentication
	Body                        BodyEncoding
	// ScopeRequired says an empty scope is refused before any call.
	ScopeRequired bool
	// MaxScopeLength is 0 when the bank sets no limit.
	MaxScopeLength int
	// RequiredHeaders must appear in Request.Headers (matched case-insensitively), or as
	// their query parameter of HeaderQueryParameters in the token endpoint's URL.
	RequiredHeaders []string
	// HeaderQueryParameters name, for a required header, the query parameter of the token
	// endpoint's URL that may carry its value instead. They are the only query parameters
	// the CRD admits in an endpoint: credentials and parameters go in the request, not the URL.
	HeaderQueryParameters map[string]string
	// AcceptsMetadata says Request.Metadata is sent (as oauth_metadata).
	AcceptsMetadata bool
	// MessageIDHeader, when set, carries a fresh UUID on every call.
	MessageIDHeader string
	// FAPI says the bank's server follows a FAPI security profile, so that a fresh
	// x-fapi-interaction-id goes with every call unless the spec turns it off. None of the
	// five banks' documents names FAPI or the header; a generic OAuth2 server may or may not
	// be one, so the spec opts in there.
	FAPI bool
	// AcceptsTokenRequestParameters says Request.Parameters are sent: a generic server may
	// take audience or RFC 8707 resource; the banks' documents list every field they take.
	AcceptsTokenRequestParameters bool
	// Revocation is where the provider's server serves RFC 7009 revocation, zero when it
	// serves none that is known (see DefaultRevocationEndpoint).
	Revocation RevocationPath
	// RevocationEndsEveryGrant says that revoking one refresh token ends every grant of the
	// client (and user), the one in use included: Keycloak's TokenRevocationEndpoint removes
	// every offline session of the token's user for the client, and a client_credentials
	// client's user is its service account. Such a bank's grants are revoked only when the
	// resource is deleted.
	RevocationEndsEveryGrant bool
	// PublishesMetadata says the provider's servers publish RFC 8414 or OpenID Connect
	// Discovery metadata, so that a spec may name the issuer instead of the endpoints.
	PublishesMetadata bool
}

// rfc6749 is a plain RFC 6749 endpoint: client_credentials or password, refresh, Basic or
// form credentials, a form body. Banks that are plain endpoints with one extra demand start here.
func rfc6749(name Name) Preset {
	return Preset{
		Name:                        name,
		DefaultGrant:                GrantClientCredentials,
		Grants:                      []GrantType{GrantClientCredentials, GrantPassword},
		SupportsRefresh:             true,
		DefaultClientAuthentication: ClientAuthBasic,
		ClientAuthentications:       []ClientAuthentication{ClientAuthBasic, ClientAuthBody},
		Body:                        BodyForm,
	}
}

// presetTable is the one table of what each bank accepts, in the order Names lists them.
// The CRD's enums and CEL rules are generated from it (hack/bankmatrix).
var presetTable = []Preset{
	scopeRequired(rfc6749(RAKBank)),
	{
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
	{
		Name:                        Banfico,
		DefaultGrant:                GrantClientCredentials,
		Grants:                      []GrantType{GrantClientCredentials},
		SupportsRefresh:             true, // Keycloak offline tokens
		Revocation:                  keycloak,
		RevocationEndsEveryGrant:    true,
		DefaultClientAuthentication: ClientAuthBasic,
		// Keycloak's client authenticators: "Client Id and Secret", "Signed JWT" and
		// "X509 Certificate" (a CA-issued certificate matched by subject, RFC 8705 §2.1).
		ClientAuthentications: []ClientAuthentication{ClientAuthBasic, ClientAuthPrivateKeyJWT, ClientAuthTLS},
		Body:                  BodyForm,
		// Keycloak serves OpenID Connect Discovery at each realm's issuer.
		PublishesMetadata: true,
	},
	{
		Name:                        Mbanq,
		DefaultGrant:                GrantPassword,
		Grants:                      []GrantType{GrantPassword},
		SupportsRefresh:             true,
		DefaultClientAuthentication: ClientAuthBody,
		ClientAuthentications:       []ClientAuthentication{ClientAuthBody},
		Body:                        BodyForm,
		RequiredHeaders:             []string{HeaderMbanqTenant},
		// MBANQ's tutorial passes the tenant as ?tenantIdentifier= on the token URL.
		HeaderQueryParameters: map[string]string{HeaderMbanqTenant: QueryMbanqTenant},
		// MBANQ is built on Apache Fineract, whose Spring token services drop the previous
		// access token on refresh; assumed until MBANQ documents otherwise.
		RefreshRevokesAccessToken: true,
	},
	// Paymob runs Django OAuth Toolkit: a refresh revokes the access token issued with the
	// refresh token it spends (measured against DOT 1.7).
	withRevocation(revokesOnRefresh(passwordOnly(rfc6749(Paymob))), djangoOAuthToolkit),
	withTokenRequestParameters(openBanking(rfc6749(OAuth2))),
}

// openBanking adds the client authentications open-banking (FAPI) servers require.
func openBanking(p Preset) Preset {
	p.ClientAuthentications = append(slices.Clone(p.ClientAuthentications),
		ClientAuthPrivateKeyJWT, ClientAuthTLS, ClientAuthSelfSignedTLS)
	p.PublishesMetadata = true
	return p
}

func withTokenRequestParameters(p Preset) Preset { p.AcceptsTokenRequestParameters = true; return p }

func scopeRequired(p Preset) Preset { p.ScopeRequired = true; return p }

func revokesOnRefresh(p Preset) Preset { p.RefreshRevokesAccessToken = true; return p }

func withRevocation(p Preset, r RevocationPath) Preset { p.Revocation = r; return p }

func passwordOnly(p Preset) Preset {
	p.DefaultGrant, p.Grants = GrantPassword, []GrantType{GrantPassword}
	return p
}

// Names lists every provider, in a stable order.
func Names() []Name {
	names := make([]Name, len(presetTable))
	for i, p := range presetTable {
		names[i] = p.Name
	}
	return names
}

// PresetFor returns the provider's preset. The slices are copies: callers may keep them.
func PresetFor(name Name) (Preset, bool) {
	i := slices.IndexFunc(presetTable, func(p Preset) bool { return p.Name == name })
	if i < 0 {
		return Preset{}, false
	}
	p := presetTable[i]
	p.Grants = slices.Clone(p.Grants)
	p.ClientAuthentications = slices.Clone(p.ClientAuthentications)
	p.RequiredHeaders = slices.Clone(p.RequiredHeaders)
	p.HeaderQueryParameters = maps.Clone(p.HeaderQueryParameters)
	return p, true
}

// SupportsGrant reports whether g is one of the preset's primary grants.
func (p Preset) SupportsGrant(g GrantType) bool { return slices.Contains(p.Grants, g) }

// SupportsClientAuthentication reports whether the endpoint accepts a.
func (p Preset) SupportsClientAuthentication(a ClientAuthentication) bool {
	return slices.Contains(p.ClientAuthentications, a)
}

// PrimaryGrants lists every grant some provider takes as its primary grant, in table order.
func PrimaryGrants() []GrantType {
	return unionOf(func(p Preset) []GrantType { return p.Grants })
}

// ClientAuthentications lists every client authentication some provider accepts, in table order.
func ClientAuthentications() []ClientAuthentication {
	return unionOf(func(p Preset) []ClientAuthentication { return p.ClientAuthentications })
}

func unionOf[T comparable](values func(Preset) []T) []T {
	var all []T
	for _, p := range presetTable {
		for _, v := range values(p) {
			if !slices.Contains(all, v) {
				all = append(all, v)
			}
		}
	}
	return all
}
