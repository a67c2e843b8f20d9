package providers_test

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// A bank whose answer has headers past MaxResponseHeaderBytes fails the call, transient, and
// the headers' contents appear nowhere. Over HTTP/1.1 the failure names the limit; the HTTP/2
// client drops the connection with a protocol error that does not say why.
func TestAnAnswerWithOversizedHeadersFailsTheCall(t *testing.T) {
	padding := strings.Repeat("h", providers.MaxResponseHeaderBytes+1024)
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Padding", padding)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"header-test-access","token_type":"Bearer","expires_in":600}`)
	})
	plain := httptest.NewServer(handler)
	t.Cleanup(plain.Close)
	h2 := httptest.NewUnstartedServer(handler)
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(h2.Close)
	overH2 := requestTo(h2.URL + "/token")
	overH2.TLS.CABundle = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h2.Certificate().Raw})
	client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard()})

	perr := fetchFailure(t, client, requestTo(plain.URL+"/token"))
	if perr.Reason != providers.ReasonResponseTooLarge || !strings.Contains(perr.Message, "headers exceed 65536 bytes") {
		t.Fatalf("HTTP/1.1: got %s: %s; want ResponseTooLarge naming the limit", perr.Reason, perr.Message)
	}
	fetchFailure(t, client, overH2)
}

// fetchFailure expects req to fail as transient, without the oversized headers' contents.
func fetchFailure(t *testing.T, client *providers.Client, req providers.Request) *providers.Error {
	t.Helper()
	_, err := client.Fetch(context.Background(), req)
	var perr *providers.Error
	if !errors.As(err, &perr) {
		t.Fatalf("got %v, want a classified failure", err)
	}
	if perr.Class != providers.ClassTransient || strings.Contains(perr.Message, "hhhh") {
		t.Fatalf("got %s/%s: %s; want a transient failure that quotes no header", perr.Class, perr.Reason, perr.Message)
	}
	return perr
}
