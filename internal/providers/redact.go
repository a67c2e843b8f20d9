package providers

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// maxDescriptionLength caps what a bank's error description may add to a message.
const maxDescriptionLength = 200

const masked = "[masked]"

// masker hides the request's secret values in text that came back from the bank, in
// every encoding the bank might echo them in.
type masker struct {
	values []string
}

func newMasker(req Request) masker {
	var m masker
	for _, s := range []Secret{req.Credentials.ClientSecret, req.Credentials.Password, req.RefreshToken, req.TLS.ClientKey,
		req.Credentials.AssertionKey.PrivateKey} {
		m.add(s.Reveal())
	}
	if !req.Credentials.ClientSecret.IsZero() {
		// A bank may echo the Authorization header it was sent.
		m.add(basicCredentials(req.Credentials.ClientID, req.Credentials.ClientSecret.Reveal()))
	}
	// A client id or username read through a chosen key may be any value of its Secret (an
	// app's database password): a bank's echo of it must not carry it into status, events
	// and logs that the view role reads. Very short ones stay readable: masking every "ab" in
	// a message would hide the message, and a secret that short protects nothing.
	if req.Credentials.MaskIdentifiers {
		for _, identifier := range []string{req.Credentials.ClientID, req.Credentials.Username} {
			if len(identifier) >= minMaskedIdentifierLength {
				m.add(identifier)
			}
		}
	}
	return m
}

// minMaskedIdentifierLength is the shortest client id or username that is masked.
const minMaskedIdentifierLength = 4

func (m *masker) add(v string) {
	if v == "" {
		return
	}
	quoted, _ := json.Marshal(v)
	percentEncoded := []string{url.QueryEscape(v), url.PathEscape(v), javaURLEncode(v)}
	for _, form := range percentEncoded {
		// Java and Keycloak write percent escapes in upper case, other stacks in lower.
		percentEncoded = append(percentEncoded, percentEscape.ReplaceAllStringFunc(form, strings.ToLower))
	}
	forms := append([]string{
		v,
		strings.Trim(string(quoted), `"`),
		base64.StdEncoding.EncodeToString([]byte(v)),
		base64.RawURLEncoding.EncodeToString([]byte(v)),
	}, percentEncoded...)
	for _, form := range forms {
		if form != "" && !slices.Contains(m.values, form) {
			m.values = append(m.values, form)
		}
	}
	// Longest first, so a value is not half-masked by a shorter one it contains.
	slices.SortFunc(m.values, func(a, b string) int { return len(b) - len(a) })
}

// percentEscape is one %XX escape.
var percentEscape = regexp.MustCompile(`%[0-9A-Fa-f]{2}`)

// javaURLEncode is java.net.URLEncoder's form encoding, which Keycloak (Banfico) and
// Spring (MBANQ) use when they echo a parameter: it keeps '*' and escapes '~', where Go's
// url.QueryEscape does the opposite. Written by hand: no Go library speaks Java's dialect.
func javaURLEncode(v string) string {
	var b strings.Builder
	for _, c := range []byte(v) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-', c == '*', c == '_':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteString(fmt.Sprintf("%%%02X", c))
		}
	}
	return b.String()
}

func (m masker) mask(s string) string {
	for _, v := range m.values {
		s = strings.ReplaceAll(s, v, masked)
	}
	return s
}

var (
	urlPattern = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)
	// jwtPattern matches compact JWS/JWE values: tokens the bank may quote back.
	jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*`)
)

// cleanDescription turns a bank-provided error text into something safe for a condition
// message: secrets masked, URLs without query strings, JWTs hidden, no control
// characters, and at most maxDescriptionLength runes.
func (m masker) cleanDescription(s string) string {
	// Control characters go first, so that none can split a secret past the masker.
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case !unicode.IsPrint(r):
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	s = m.mask(s)
	s = urlPattern.ReplaceAllStringFunc(s, stripQuery)
	s = jwtPattern.ReplaceAllString(s, masked)
	if r := []rune(s); len(r) > maxDescriptionLength {
		s = string(r[:maxDescriptionLength]) + "…"
	}
	// Again: stripping and truncating must not have assembled a secret.
	return m.mask(s)
}

// stripQuery removes the query, fragment and user info from a URL: any of them may hold
// a credential.
func stripQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			return raw[:i]
		}
		return raw
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment, u.User = "", false, "", "", nil
	return u.String()
}
