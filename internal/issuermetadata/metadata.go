package issuermetadata

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// MaxDocumentBytes caps a metadata document; real ones are a few KiB.
const MaxDocumentBytes = 256 << 10

// maxURLLength bounds an endpoint a document names, as the CRD bounds one a spec names: it
// is written into status.
const maxURLLength = 2048

// maxQuoted bounds what of a document a message quotes: messages land in conditions.
const maxQuoted = 256

// Status reasons of a failure to read the metadata, CamelCase for a condition's Reason.
const (
	// ReasonUnavailable: the document could not be fetched (network, TLS, a 5xx, no
	// document at either well-known location).
	ReasonUnavailable = "IssuerMetadataUnavailable"
	// ReasonInvalid: a document came but cannot be used: not JSON, an issuer other than
	// the configured one, an endpoint that is not https or that the endpoint guard refuses.
	ReasonInvalid = "IssuerMetadataInvalid"
)

// Error is a failure to read or use the metadata; its message names the URL (without
// query) and the problem, never a body.
type Error struct {
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Message }

func errorf(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Metadata is what the operator takes from a metadata document.
type Metadata struct {
	// Issuer is the document's issuer, equal to the configured one.
	Issuer string
	// Location is the URL the document was read from.
	Location string
	// TokenEndpoint and RevocationEndpoint are the document's; RevocationEndpoint is ""
	// when it names none.
	TokenEndpoint, RevocationEndpoint string
	// MTLSTokenEndpoint and MTLSRevocationEndpoint are mtls_endpoint_aliases' (RFC 8705
	// §5), "" when absent.
	MTLSTokenEndpoint, MTLSRevocationEndpoint string
	// AuthMethods is token_endpoint_auth_methods_supported, or RFC 8414's default
	// (client_secret_basic) when the document omits it.
	AuthMethods []string
	// SigningAlgorithms is token_endpoint_auth_signing_alg_values_supported; nil when the
	// document omits it (RFC 8414 sets no default: nothing is refused then).
	SigningAlgorithms []string
	// CertificateBoundAccessTokens is tls_client_certificate_bound_access_tokens (RFC 8705 §3.3).
	CertificateBoundAccessTokens bool
}

// document is the wire form: the names are RFC 8414 §2's and RFC 8705 §3.3 and §5's.
type document struct {
	Issuer                       string            `json:"issuer"`
	TokenEndpoint                string            `json:"token_endpoint"`
	RevocationEndpoint           string            `json:"revocation_endpoint"`
	TokenEndpointAuthMethods     []string          `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgs []string          `json:"token_endpoint_auth_signing_alg_values_supported"`
	CertificateBoundAccessTokens bool              `json:"tls_client_certificate_bound_access_tokens"`
	MTLSEndpointAliases          map[string]string `json:"mtls_endpoint_aliases"`
}

// Fetch GETs a URL and returns the answer's status and body, or an error when no answer
// came. *providers.Client's FetchDocument, bound to a request's TLS material, is one.
type Fetch func(ctx context.Context, rawURL string) (status int, body []byte, err error)

// CheckEndpoint refuses an endpoint a document names that calls must not go to (the https
// rule, the endpoint guard's host rules); nil admits every absolute URL.
type CheckEndpoint func(*url.URL) error

// Locations are where an issuer's metadata is looked for, in order: RFC 8414 §3.1's
// (the well-known suffix inserted between the host and the issuer's path), then OpenID
// Connect Discovery 1.0 §4's (the suffix appended to the issuer). They are the same URL for
// an issuer without a path.
func Locations(issuer string) (rfc8414, openIDConfiguration string, err error) {
	u, perr := url.Parse(issuer)
	if perr != nil || !u.IsAbs() || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", "", errorf(ReasonInvalid, "issuer %q is not an absolute URL without query, fragment or user information", issuer)
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	wellKnown := *u
	wellKnown.RawPath = ""
	wellKnown.Path = "/.well-known/oauth-authorization-server" + u.Path
	wellKnown.Path = strings.TrimSuffix(wellKnown.Path, "/")
	if path == "" {
		wellKnown.Path = "/.well-known/oauth-authorization-server"
	}
	discovery := *u
	discovery.RawPath = ""
	discovery.Path = strings.TrimSuffix(u.Path, "/") + "/.well-known/openid-configuration"
	return wellKnown.String(), discovery.String(), nil
}

// Read fetches the issuer's metadata: RFC 8414's location first and, when that answers
// 404, OpenID Connect Discovery's. The document's issuer must equal issuer exactly (RFC
// 8414 §3.3), and every endpoint it names must be absolute and pass check.
func Read(ctx context.Context, issuer string, fetch Fetch, check CheckEndpoint) (*Metadata, error) {
	primary, fallback, err := Locations(issuer)
	if err != nil {
		return nil, err
	}
	location := primary
	status, body, ferr := fetch(ctx, primary)
	if ferr == nil && status == http.StatusNotFound {
		location = fallback
		status, body, ferr = fetch(ctx, fallback)
	}
	if ferr != nil {
		return nil, errorf(ReasonUnavailable, "reading the metadata of issuer %s failed: %v", issuer, ferr)
	}
	if status != http.StatusOK {
		return nil, errorf(ReasonUnavailable, "%s answered %d, not the metadata document", location, status)
	}
	var doc document
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errorf(ReasonInvalid, "%s did not answer a JSON metadata document", location)
	}
	if doc.Issuer != issuer {
		return nil, errorf(ReasonInvalid, "%s names issuer %q, not %q: RFC 8414 §3.3 forbids using it", location, Quote(doc.Issuer), issuer)
	}
	md := &Metadata{
		Issuer:                       doc.Issuer,
		Location:                     location,
		TokenEndpoint:                doc.TokenEndpoint,
		RevocationEndpoint:           doc.RevocationEndpoint,
		MTLSTokenEndpoint:            doc.MTLSEndpointAliases["token_endpoint"],
		MTLSRevocationEndpoint:       doc.MTLSEndpointAliases["revocation_endpoint"],
		AuthMethods:                  doc.TokenEndpointAuthMethods,
		SigningAlgorithms:            doc.TokenEndpointAuthSigningAlgs,
		CertificateBoundAccessTokens: doc.CertificateBoundAccessTokens,
	}
	if md.AuthMethods == nil {
		md.AuthMethods = []string{"client_secret_basic"}
	}
	if md.TokenEndpoint == "" && md.MTLSTokenEndpoint == "" {
		return nil, errorf(ReasonInvalid, "%s names no token_endpoint", location)
	}
	for name, endpoint := range map[string]string{
		"token_endpoint": md.TokenEndpoint, "revocation_endpoint": md.RevocationEndpoint,
		"mtls_endpoint_aliases.token_endpoint": md.MTLSTokenEndpoint, "mtls_endpoint_aliases.revocation_endpoint": md.MTLSRevocationEndpoint,
	} {
		if err := checkEndpoint(endpoint, check); err != nil {
			return nil, errorf(ReasonInvalid, "%s: %s %s", location, name, err)
		}
	}
	return md, nil
}

func checkEndpoint(endpoint string, check CheckEndpoint) error {
	if endpoint == "" {
		return nil
	}
	u, err := url.Parse(endpoint)
	if len(endpoint) > maxURLLength {
		return fmt.Errorf("is longer than %d characters", maxURLLength)
	}
	if err != nil || !u.IsAbs() || u.Hostname() == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("is not an absolute URL without user information or fragment")
	}
	if check != nil {
		if err := check(u); err != nil {
			return fmt.Errorf("is refused: %w", err)
		}
	}
	return nil
}

// Quote is at most the first 256 bytes of a value a document holds, for a message.
func Quote(value string) string {
	if len(value) <= maxQuoted {
		return value
	}
	return strings.ToValidUTF8(value[:maxQuoted], "") + "..."
}

// UsesMTLSAliases says whether the client's calls go to mtls_endpoint_aliases: it
// authenticates with a certificate, or it presents one to a server that binds tokens to it
// (RFC 8705 §5: the aliases are where a client that uses mutual TLS calls).
func (m *Metadata) UsesMTLSAliases(certificateAuthentication, presentsCertificate bool) bool {
	return certificateAuthentication || (presentsCertificate && m.CertificateBoundAccessTokens)
}

// Endpoints are the endpoints a client takes from the metadata; each Alias field says the
// value came from mtls_endpoint_aliases.
type Endpoints struct {
	Token, Revocation           string
	TokenAlias, RevocationAlias bool
}

// EndpointsFor chooses the token and revocation endpoints: mtls_endpoint_aliases' where
// the client uses mutual TLS and the server has one, else the plain ones.
func (m *Metadata) EndpointsFor(mtls bool) Endpoints {
	e := Endpoints{Token: m.TokenEndpoint, Revocation: m.RevocationEndpoint}
	if mtls && m.MTLSTokenEndpoint != "" {
		e.Token, e.TokenAlias = m.MTLSTokenEndpoint, true
	}
	if mtls && m.MTLSRevocationEndpoint != "" {
		e.Revocation, e.RevocationAlias = m.MTLSRevocationEndpoint, true
	}
	return e
}

// AuthMethodName is the RFC 8414 / IANA registry name of a client authentication method,
// "" for one the registry has no name for (RAKBANK partner's headers).
func AuthMethodName(a providers.ClientAuthentication) string {
	switch a {
	case providers.ClientAuthBasic:
		return "client_secret_basic"
	case providers.ClientAuthBody:
		return "client_secret_post"
	case providers.ClientAuthPrivateKeyJWT:
		return "private_key_jwt"
	case providers.ClientAuthTLS:
		return "tls_client_auth"
	case providers.ClientAuthSelfSignedTLS:
		return "self_signed_tls_client_auth"
	}
	return ""
}

// SupportsAuthMethod says whether the metadata lists the method.
func (m *Metadata) SupportsAuthMethod(name string) bool { return slices.Contains(m.AuthMethods, name) }

// SupportsSigningAlgorithm says whether the metadata admits alg for client assertions: it
// lists it, or lists none.
func (m *Metadata) SupportsSigningAlgorithm(alg string) bool {
	return m.SigningAlgorithms == nil || slices.Contains(m.SigningAlgorithms, alg)
}
