package sandbox

import (
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"
)

// interactionIDHeader is FAPI 1.0 Part 1 §6.2.1's correlation header, spelled here from the
// standard rather than taken from the client.
const interactionIDHeader = "x-fapi-interaction-id"

// RFC 8707 §2's resource, which a client sends once per target, and the audience that
// generic servers (Auth0, Okta, token exchange) take.
const (
	resourceParameter = "resource"
	audienceParameter = "audience"
)

// interactionIDOf is every x-fapi-interaction-id r carried, however spelled, joined as HTTP
// joins a repeated field: a client that sent two is seen sending "a, b".
func interactionIDOf(r *http.Request) string {
	var values []string
	for name, v := range r.Header {
		if strings.EqualFold(name, interactionIDHeader) {
			values = append(values, v...)
		}
	}
	return strings.Join(values, ", ")
}

// echoInteractionID answers as a FAPI server does: with the interaction id the call carried,
// or a fresh one when it carried none.
func echoInteractionID(w http.ResponseWriter, sent string) {
	if sent == "" {
		sent = uuid.NewString()
	}
	w.Header()[interactionIDHeader] = []string{sent}
}

// targetsOf reads the resource and audience parameters of a form body; nil for any other.
func targetsOf(r *http.Request, body []byte) (resource, audience []string) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		return nil, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, nil
	}
	return form[resourceParameter], form[audienceParameter]
}
