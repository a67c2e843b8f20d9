package sandbox

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Fault is a failure of a bank's token endpoint, or of the network in front of it, that a
// bank can be set to produce (SetFault). Some answer instead of the bank; the others let
// the bank act (issue, rotate) and spoil its answer on the way back, so that the client
// cannot know what the bank did.
type Fault int

const (
	NoFault Fault = iota
	// FaultServerError answers 500 server_error instead of the bank.
	FaultServerError
	// FaultGatewayHTMLPage answers 502 with a gateway's HTML page instead of the bank.
	FaultGatewayHTMLPage
	// FaultInvalidGrantOnRefresh answers invalid_grant to refresh_token calls.
	FaultInvalidGrantOnRefresh
	// FaultInvalidGrantOnPrimary answers invalid_grant to every other grant.
	FaultInvalidGrantOnPrimary
	// FaultTimeout holds the bank's answer until the client gives up.
	FaultTimeout
	// FaultResetMidBody cuts the connection after half of the bank's answer.
	FaultResetMidBody
	// FaultTruncatedJSON sends the bank's answer with its second half missing.
	FaultTruncatedJSON
	// FaultHugeBody pads the bank's answer to more than 2 MiB.
	FaultHugeBody
	// FaultOneBytePerSecond sends the bank's answer one byte a second.
	FaultOneBytePerSecond
	// FaultGateway401OnRefresh refuses refresh_token calls as IBM API Connect's gateway
	// refuses a call itself (RAKBANK's gateway; seeds/000 and providers.md §1): 401 with
	// {httpCode, httpMessage, moreInformation}, not an RFC 6749 error.
	FaultGateway401OnRefresh
	// FaultHTML400OnRefresh refuses refresh_token calls with a proxy's HTML 400 page.
	FaultHTML400OnRefresh
)

var faultNames = map[Fault]string{
	NoFault: "none", FaultServerError: "500 server_error", FaultGatewayHTMLPage: "502 HTML page",
	FaultInvalidGrantOnRefresh: "invalid_grant on refresh", FaultInvalidGrantOnPrimary: "invalid_grant on primary grant",
	FaultTimeout: "timeout", FaultResetMidBody: "reset mid-body", FaultTruncatedJSON: "truncated JSON",
	FaultHugeBody: "2 MiB body", FaultOneBytePerSecond: "1 byte/s",
	FaultGateway401OnRefresh: "gateway 401 on refresh", FaultHTML400OnRefresh: "HTML 400 on refresh",
}

func (f Fault) String() string { return faultNames[f] }

// hugeBodyPadding makes FaultHugeBody's answer larger than 2 MiB.
const hugeBodyPadding = 2<<20 + 1

// maxHold bounds how long FaultTimeout and FaultOneBytePerSecond keep a handler running
// for a client that does not give up.
const maxHold = 2 * time.Minute

// SetFault makes bank produce fault on every call until it is set to NoFault.
func (s *Server) SetFault(name providers.Name, fault Fault) {
	s.withBank(name, func(b *bank) { b.fault = fault })
}

// answerInsteadOfBank is the reply of a fault that answers before the bank acts.
func (f Fault) answerInsteadOfBank(body []byte) (reply, bool) {
	grant := grantOf(body)
	rep, ok := f.answerToGrant(grant == "refresh_token")
	rep.call.Grant = providers.GrantType(grant)
	return rep, ok
}

func (f Fault) answerToGrant(refresh bool) (reply, bool) {
	switch {
	case f == FaultServerError:
		return oauthError(http.StatusInternalServerError, "server_error", "fault injected: internal error"), true
	case f == FaultGatewayHTMLPage:
		return reply{status: http.StatusBadGateway, call: Call{Error: "bad_gateway", Reason: "fault injected: gateway page"},
			html: "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>"}, true
	case f == FaultInvalidGrantOnRefresh && refresh, f == FaultInvalidGrantOnPrimary && !refresh:
		return oauthError(http.StatusBadRequest, "invalid_grant", "fault injected: grant refused"), true
	case f == FaultGateway401OnRefresh && refresh:
		return reply{status: http.StatusUnauthorized, call: Call{Error: "401", Reason: "fault injected: gateway refusal"},
			body: map[string]string{"httpCode": "401", "httpMessage": "Unauthorized", "moreInformation": "Invalid client id or secret."}}, true
	case f == FaultHTML400OnRefresh && refresh:
		return reply{status: http.StatusBadRequest, call: Call{Error: "bad_request", Reason: "fault injected: proxy page"},
			html: "<html><head><title>400 Bad Request</title></head><body><center><h1>400 Bad Request</h1></center><hr><center>nginx</center></body></html>"}, true
	}
	return reply{}, false
}

// answerToRevocation is the reply of a fault that answers instead of a revocation
// endpoint: the ones not tied to a grant.
func (f Fault) answerToRevocation() (reply, bool) {
	if f == FaultServerError || f == FaultGatewayHTMLPage {
		return f.answerToGrant(false)
	}
	return reply{}, false
}

// grantOf reads grant_type from a form or JSON body, for faults that pick a grant.
func grantOf(body []byte) string {
	var asJSON struct {
		GrantType string `json:"grant_type"`
	}
	if json.Unmarshal(body, &asJSON) == nil {
		return asJSON.GrantType
	}
	form, _ := url.ParseQuery(string(body))
	return form.Get("grant_type")
}

// writeSpoiled writes rep as fault spoils it, and reports whether fault spoils answers.
func writeSpoiled(w http.ResponseWriter, r *http.Request, fault Fault, rep reply) bool {
	body, contentType := encodeReply(rep)
	switch fault {
	case FaultTimeout:
		hold(r, maxHold)
		return true
	case FaultHugeBody:
		padded := `{"padding":"` + strings.Repeat("x", hugeBodyPadding) + `",` + strings.TrimPrefix(string(body), "{")
		writeBody(w, rep.status, contentType, len(padded), padded)
	case FaultTruncatedJSON:
		writeBody(w, rep.status, contentType, len(body)/2, string(body[:len(body)/2]))
	case FaultResetMidBody:
		writeBody(w, rep.status, contentType, len(body), string(body[:len(body)/2]))
		http.NewResponseController(w).Flush()
		// Aborts the connection (HTTP/1) or resets the stream (HTTP/2).
		panic(http.ErrAbortHandler)
	case FaultOneBytePerSecond:
		writeBody(w, rep.status, contentType, len(body), "")
		trickle(w, r, body)
	default:
		return false
	}
	return true
}

func encodeReply(rep reply) ([]byte, string) {
	if rep.html != "" {
		return []byte(rep.html), "text/html; charset=utf-8"
	}
	body, _ := json.Marshal(rep.body)
	return body, "application/json"
}

func writeBody(w http.ResponseWriter, status int, contentType string, contentLength int, body string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(contentLength))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// trickle sends body a byte a second until it is sent or the client goes away.
func trickle(w http.ResponseWriter, r *http.Request, body []byte) {
	controller := http.NewResponseController(w)
	for i := range body {
		if _, err := w.Write(body[i : i+1]); err != nil || controller.Flush() != nil {
			return
		}
		if !hold(r, time.Second) {
			return
		}
	}
}

// hold waits d, or less if the client goes away; it reports whether the client is still there.
func hold(r *http.Request, d time.Duration) bool {
	select {
	case <-r.Context().Done():
		return false
	case <-time.After(d):
		return true
	}
}
