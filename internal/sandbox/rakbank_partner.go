package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// The partner endpoint's wire names, spelled as its document spells them (seeds/001): the
// fake must not borrow the client's constants, or a misspelling there would pass here.
const (
	headerIBMClientID     = "X-IBM-Client-Id"
	headerIBMClientSecret = "X-IBM-Client-Secret"
	headerMsgID           = "MsgId"
)

// maxMsgIDLength is the portal's limit for MsgId.
const maxMsgIDLength = 50

// maxPartnerScopeLength is the access_token_request schema's maxLength for scope (seeds/001).
const maxPartnerScopeLength = 500

// partnerRequest is the access_token_request schema (additionalProperties: false).
type partnerRequest struct {
	GrantType     *string        `json:"grant_type"`
	Scope         *string        `json:"scope"`
	OAuthMetadata map[string]any `json:"oauth_metadata"`
}

// partnerScopeMetadata is the metadata each scope requires ("certain scopes may require
// specific metadata fields").
var partnerScopeMetadata = map[string][]string{
	"accounts": {"account_id"},
}

// ibmError is the partner API's error shape: {status, response_code, response_message,
// description}, never RFC 6749's.
func ibmError(status int, code, message, description string) reply {
	return reply{status: status, body: map[string]string{
		"status":           strconv.Itoa(status),
		"response_code":    code,
		"response_message": message,
		"description":      description,
	}, call: Call{Error: code, Reason: description}}
}

// serveRAKBankPartner is RAKBANK's partner auth, /v1/partner_auth/token: mutual TLS,
// X-IBM-Client-Id/Secret headers, a fresh UUID MsgId per call, a strict JSON body.
func serveRAKBankPartner(s *Server, b *bank, r *http.Request, body []byte) reply {
	msgID := r.Header.Get(headerMsgID)
	auth := providers.ClientAuthentication("")
	if r.Header.Get(headerIBMClientID) != "" {
		auth = providers.ClientAuthHeaders
	}
	fail := partnerFailureFor(Call{MsgID: msgID, ClientAuthentication: auth})
	if rejected, ok := checkPartnerCaller(b, r, msgID, fail); !ok {
		return rejected
	}

	req, problem := decodePartnerRequest(body)
	if problem != "" {
		return fail(http.StatusBadRequest, "REQ-002", "Bad Request", problem)
	}
	grant, scope := *req.GrantType, *req.Scope
	fail = partnerFailureFor(Call{MsgID: msgID, ClientAuthentication: auth, Grant: providers.GrantType(grant)})
	if grant != "client_credentials" {
		return fail(http.StatusBadRequest, "REQ-003", "Bad Request", `grant_type must be "client_credentials"`)
	}
	if n := utf8.RuneCountInString(scope); n < 1 || n > maxPartnerScopeLength {
		return fail(http.StatusBadRequest, "REQ-004", "Bad Request", "scope must be 1 to 500 characters")
	}
	if !b.scopeAllowed(scope) {
		return fail(http.StatusForbidden, "SCOPE-001", "Forbidden", "scope not allowed for this client")
	}
	metadata, rejected, ok := partnerMetadata(req, scope, fail)
	if !ok {
		return rejected
	}

	granted := map[string]any{
		"token_type":   "bearer",
		"access_token": b.issueAccessToken(s, grant, b.creds.ClientID, ""),
		"expires_in":   seconds(b.lifetime),
		"scope":        scope,
	}
	if b.partnerReturnsRefreshToken {
		// The response schema has additionalProperties: true (seeds/001). The token is not
		// kept: this endpoint takes no refresh_token grant, so it opens no grant anyone can
		// use, and RefreshTokenValid and LiveGrants do not know it.
		granted["refresh_token"] = newOpaqueToken(b.slug + "-rt")
	}
	rep := reply{status: http.StatusOK, body: granted}
	rep.call = Call{Grant: providers.GrantType(grant), ClientAuthentication: auth, MsgID: msgID, Metadata: metadata}
	return rep
}

// SetPartnerReturnsRefreshToken makes RAKBANK partner's 200 also carry a refresh_token,
// which its response schema allows; the endpoint still refuses the refresh_token grant.
func (s *Server) SetPartnerReturnsRefreshToken(on bool) {
	s.withBank(providers.RAKBankPartner, func(b *bank) { b.partnerReturnsRefreshToken = on })
}

// partnerFailure is an IBM-shaped error reply that records what is known of the call.
type partnerFailure func(status int, code, message, description string) reply

// partnerFailureFor records known's MsgID, client authentication and grant with a failure.
func partnerFailureFor(known Call) partnerFailure {
	return func(status int, code, message, description string) reply {
		rep := ibmError(status, code, message, description)
		rep.call.MsgID, rep.call.ClientAuthentication, rep.call.Grant = known.MsgID, known.ClientAuthentication, known.Grant
		return rep
	}
}

// checkPartnerCaller checks what comes before the body: the client certificate, a fresh
// MsgId, the client credentials in their headers, and the media type.
func checkPartnerCaller(b *bank, r *http.Request, msgID string, fail partnerFailure) (reply, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return fail(http.StatusUnauthorized, "AUTH-001", "Unauthorized", "a client certificate signed by the partner CA is required (mutual TLS)"), false
	}
	switch {
	case len(r.Header.Values(headerMsgID)) != 1 || msgID == "":
		return fail(http.StatusBadRequest, "MSG-001", "Bad Request", "header MsgId is required"), false
	case len(msgID) > maxMsgIDLength || !isCanonicalUUID(msgID):
		return fail(http.StatusBadRequest, "MSG-002", "Bad Request", "header MsgId must be a UUID of at most 50 characters"), false
	case b.msgIDs[msgID]:
		return fail(http.StatusBadRequest, "MSG-003", "Bad Request", "header MsgId was already used"), false
	}
	b.msgIDs[msgID] = true

	if r.Header.Get("Authorization") != "" {
		return fail(http.StatusBadRequest, "AUTH-002", "Bad Request", "client credentials go in X-IBM-Client-Id and X-IBM-Client-Secret, not Authorization"), false
	}
	if !hasHeader(r, headerIBMClientID, b.creds.ClientID) || !hasHeader(r, headerIBMClientSecret, b.creds.ClientSecret) {
		return fail(http.StatusUnauthorized, "AUTH-003", "Unauthorized", "invalid client id or secret"), false
	}
	if mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mediaType != "application/json" {
		return fail(http.StatusUnsupportedMediaType, "REQ-001", "Unsupported Media Type", "Content-Type must be application/json"), false
	}
	return reply{}, true
}

// partnerMetadata reads oauth_metadata: the identifiers are strings, and each scope's
// required fields are present.
func partnerMetadata(req *partnerRequest, scope string, fail partnerFailure) (map[string]string, reply, bool) {
	metadata := map[string]string{}
	for k, v := range req.OAuthMetadata {
		sv, ok := v.(string)
		if !ok && (k == "account_id" || k == "emirates_id") {
			return nil, fail(http.StatusBadRequest, "REQ-005", "Bad Request", "oauth_metadata."+k+" must be a string"), false
		}
		metadata[k] = sv
	}
	for _, word := range strings.Fields(scope) {
		for _, field := range partnerScopeMetadata[word] {
			if metadata[field] == "" {
				return nil, fail(http.StatusBadRequest, "REQ-006", "Bad Request", "scope "+word+" requires oauth_metadata."+field), false
			}
		}
	}
	return metadata, reply{}, true
}

// decodePartnerRequest applies the schema: a single JSON object, no unknown fields,
// grant_type and scope present as strings.
func decodePartnerRequest(body []byte) (*partnerRequest, string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req partnerRequest
	if err := dec.Decode(&req); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			return nil, "additional properties are not allowed"
		}
		return nil, "body is not a valid access_token_request"
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, "body has data after the JSON object"
	}
	if req.GrantType == nil || req.Scope == nil {
		return nil, "grant_type and scope are required"
	}
	return &req, ""
}

func isCanonicalUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && len(s) == 36 && strings.EqualFold(u.String(), s)
}
