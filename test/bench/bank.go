package main

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// bank is an instant OAuth2 token endpoint: every POST gets a fresh bearer token with the
// configured lifetime. It counts the calls and remembers when each happened, and for whom.
type bank struct {
	url      string
	srv      *http.Server
	calls    atomic.Int64
	lifetime atomic.Int64 // seconds

	mu       sync.Mutex
	times    []time.Time
	byClient map[string][]time.Time // client_id -> times of its calls
}

func startBank() (*bank, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &bank{url: fmt.Sprintf("http://%s/oauth/token", ln.Addr()), byClient: map[string][]time.Time{}}
	b.lifetime.Store(int64(24 * time.Hour / time.Second))
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth/token", b.token)
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

func (b *bank) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	n := b.calls.Add(1)
	now, client := time.Now(), clientID(r)
	b.mu.Lock()
	b.times = append(b.times, now)
	b.byClient[client] = append(b.byClient[client], now)
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	// The token ends in its issue time, so that the bench's observer knows when a token an
	// output Secret holds expires (tokenIssuedAt).
	_, _ = w.Write([]byte(`{"access_token":"bench-` + strconv.FormatInt(n, 10) + `-` +
		strconv.FormatInt(now.UnixNano(), 36) + `","token_type":"Bearer","expires_in":` +
		strconv.FormatInt(b.lifetime.Load(), 10) + `}`))
}

// tokenIssuedAt reads the issue time the bench's bank put at the end of a token; zero for
// a token it did not issue.
func tokenIssuedAt(token string) time.Time {
	i := strings.LastIndexByte(token, '-')
	if i < 0 {
		return time.Time{}
	}
	nanos, err := strconv.ParseInt(token[i+1:], 36, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(0, nanos)
}

func (b *bank) setLifetime(d time.Duration) { b.lifetime.Store(int64(d / time.Second)) }

// callTimesSince returns the times of the calls after t.
func (b *bank) callTimesSince(t time.Time) []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []time.Time
	for _, c := range b.times {
		if !c.Before(t) {
			out = append(out, c)
		}
	}
	return out
}

// clientID is the caller's client_id: from HTTP Basic (form-encoded, RFC 6749 2.3.1) or
// from the form body, whichever the request's client authentication used.
func clientID(r *http.Request) string {
	if user, _, ok := r.BasicAuth(); ok {
		if id, err := url.QueryUnescape(user); err == nil {
			return id
		}
		return user
	}
	return r.PostFormValue("client_id")
}

// clientCallsSince returns, per client_id, the times of its calls after t.
func (b *bank) clientCallsSince(t time.Time) map[string][]time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string][]time.Time{}
	for client, times := range b.byClient {
		for _, c := range times {
			if !c.Before(t) {
				out[client] = append(out[client], c)
			}
		}
	}
	return out
}

func (b *bank) close() { _ = b.srv.Close() }
