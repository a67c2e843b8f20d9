package sandbox

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Callers. A bank's gateway limits and counts calls per client, not per bank: the
// operator's call budget is per connection because one client's calls share the bank's
// limit. So every call is logged with the client it came from (Call.ClientID), and a
// gateway can rate-limit one client while it serves the others (SetClientRateLimited).
//
// The client is named as the banks' documents say a client identifies itself, read here
// without trusting it (the bank's own checks come after): HTTP Basic's user, form-urlencoded
// (RFC 6749 §2.3.1; RAKBANK seeds/000, Banfico seeds/002, Paymob seeds/004's "-u
// {CLIENT_ID}:{CLIENT_SECRET}"), the form's client_id (seeds/000, MBANQ seeds/003), the
// X-IBM-Client-Id header (RAKBANK partner, seeds/001), or a client assertion's subject
// (RFC 7523 §3: sub is the client_id).

// headerCallerClientID is the header RAKBANK partner's gateway takes the client id from
// (seeds/001: "clientIdHeader X-IBM-Client-Id").
const headerCallerClientID = "X-IBM-Client-Id"

// callerOf names the client a call says it comes from; "" when it names none.
func callerOf(r *http.Request, body []byte) string {
	if user, _, ok := r.BasicAuth(); ok {
		if id, err := url.QueryUnescape(user); err == nil {
			return id
		}
		return user
	}
	if id := r.Header.Get(headerCallerClientID); id != "" {
		return id
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || len(form) == 0 {
		return callerOfJSON(body)
	}
	if id := form.Get("client_id"); id != "" {
		return id
	}
	if assertion := form.Get("client_assertion"); assertion != "" {
		claims := jwt.RegisteredClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(assertion, &claims); err == nil {
			return claims.Subject
		}
	}
	return ""
}

// callerOfJSON reads client_id from a JSON body; "" when there is none.
func callerOfJSON(body []byte) string {
	var asJSON struct {
		ClientID string `json:"client_id"`
	}
	if json.Unmarshal(body, &asJSON) != nil {
		return ""
	}
	return asJSON.ClientID
}

// rateLimitedCaller is the gateway's 429 to a client it limits; false when it does not.
func (b *bank) rateLimitedCaller(caller string) (reply, bool) {
	retryAfter := b.rateLimitedClients[caller]
	if caller == "" || retryAfter <= 0 {
		return reply{}, false
	}
	secs := int((retryAfter + time.Second - 1) / time.Second)
	return reply{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {strconv.Itoa(secs)}},
		body: map[string]string{"error": "too_many_requests", "error_description": "rate limit exceeded for this client"},
		call: Call{Error: "too_many_requests", Reason: "client set rate limited"}}, true
}

// SetClientRateLimited makes bank's gateway answer clientID's calls (token and revocation)
// with 429 and Retry-After (seconds) while retryAfter > 0; other clients are served.
func (s *Server) SetClientRateLimited(name providers.Name, clientID string, retryAfter time.Duration) {
	s.withBank(name, func(b *bank) {
		if b.rateLimitedClients == nil {
			b.rateLimitedClients = map[string]time.Duration{}
		}
		if retryAfter <= 0 {
			delete(b.rateLimitedClients, clientID)
			return
		}
		b.rateLimitedClients[clientID] = retryAfter
	})
}
