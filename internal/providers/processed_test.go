package providers_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// These tests answer, over real loopback connections, whether a failed call may have been
// processed by the bank: the question that decides whether a refresh token sent in it is spent.

func refreshRequest(endpoint string) providers.Request {
	return providers.Request{
		Provider:          providers.OAuth2,
		TokenEndpoint:     endpoint,
		Credentials:       providers.Credentials{ClientID: "client", ClientSecret: "demo-client-secret"},
		RefreshToken:      "demo-refresh-token",
		AllowInsecureHTTP: true,
	}
}

// rawServer accepts connections on loopback and hands each, after the whole request has
// been read, to afterRequest.
func rawServer(t *testing.T, afterRequest func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, r.Body)
				afterRequest(conn)
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/token"
}

func answering(t *testing.T, status int, header http.Header, body string) string {
	t.Helper()
	srv := httptest.NewServer(reply(status, header, body))
	t.Cleanup(srv.Close)
	return srv.URL + "/token"
}

func refusingEndpoint(t *testing.T) string { return "http://" + refusedAddress(t) + "/token" }

// refusedAddress is a loopback address nothing listens on: a dial there is refused.
func refusedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func untrustedTLSEndpoint(t *testing.T) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + "/token"
}

// processedTimeout bounds each call: long enough for loopback, short for a test.
const processedTimeout = 300 * time.Millisecond

type processedCase struct {
	name      string
	endpoint  func(t *testing.T) string
	cancelled bool // the caller's context is cancelled once the request is out
	want      bool
}

func processedCases(t *testing.T) []processedCase {
	t.Helper()
	hang := func(net.Conn) { time.Sleep(3 * processedTimeout) }
	return []processedCase{
		{"connection refused", refusingEndpoint, false, false},
		{"DNS name that does not resolve", func(*testing.T) string { return "http://bank.invalid/token" }, false, false},
		{"TLS handshake refused (unknown authority)", untrustedTLSEndpoint, false, false},
		{"endpoint refused before sending (not http or https)", func(t *testing.T) string { return "ftp://127.0.0.1/token" }, false, false},
		{"429 Too Many Requests", func(t *testing.T) string {
			return answering(t, http.StatusTooManyRequests, nil, `{"error":"slow down"}`)
		}, false, false},
		{"503 with Retry-After", func(t *testing.T) string {
			return answering(t, http.StatusServiceUnavailable, http.Header{"Retry-After": {"30"}}, "busy")
		}, false, false},
		{"404: not a token endpoint", func(t *testing.T) string { return answering(t, http.StatusNotFound, nil, "") }, false, false},
		{"503 without Retry-After", func(t *testing.T) string {
			return answering(t, http.StatusServiceUnavailable, nil, "<html>down</html>")
		}, false, true},
		{"400 invalid_grant", func(t *testing.T) string {
			return answering(t, http.StatusBadRequest, nil, `{"error":"invalid_grant"}`)
		}, false, true},
		{"unreadable 200", func(t *testing.T) string { return answering(t, http.StatusOK, nil, "<html>ok</html>") }, false, true},
		{"connection closed after the request was read", func(t *testing.T) string {
			return rawServer(t, func(net.Conn) {})
		}, false, true},
		{"no answer within the timeout after the request was read", func(t *testing.T) string {
			return rawServer(t, hang)
		}, false, true},
		{"200 whose body is cut off", func(t *testing.T) string {
			return rawServer(t, func(c net.Conn) {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"access_token\":\"demo-acc")
			})
		}, false, true},
		{"cancelled after the request was read", func(t *testing.T) string { return rawServer(t, hang) }, true, true},
	}
}

func TestMayHaveBeenProcessed(t *testing.T) {
	tests := processedCases(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelled {
				go func() { time.Sleep(processedTimeout / 3); cancel() }()
			}
			req := refreshRequest(tc.endpoint(t))
			_, err := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard(), Timeout: processedTimeout}).Fetch(ctx, req)
			if err == nil {
				t.Fatal("the call succeeded")
			}
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("not an *Error: %v", err)
			}
			if got := pe.MayHaveBeenProcessed(); got != tc.want {
				t.Errorf("MayHaveBeenProcessed() = %v, want %v (NotSent %v, %s %s: %s)", got, tc.want, pe.NotSent, pe.Class, pe.Reason, pe.Message)
			}
		})
	}
}

func TestMayHaveBeenProcessedIsConservative(t *testing.T) {
	if !(&providers.Error{Class: providers.ClassTransient, Reason: providers.ReasonTimeout}).MayHaveBeenProcessed() {
		t.Error("an *Error that does not say it was not sent must count as possibly processed")
	}
}
