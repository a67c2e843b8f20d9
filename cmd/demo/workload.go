package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// replacedTokens plays the workload that reads the output Secret late: when a renewal
// replaces a resource's token, it calls the bank's protected API once more with the token
// that was replaced, and the demo shows whether the bank still accepted it. The operator
// keeps a replaced token working for the secret propagation delay (at Paymob and MBANQ a
// refresh revokes the access token issued with the refresh token it spends).
type replacedTokens struct {
	mu       sync.Mutex
	last     map[string]string // resource name -> the token last seen in its Secret
	accepted int
	refused  int
	client   *http.Client
}

// newReplacedTokens calls the APIs trusting caPEM and presenting the sandbox's client
// certificate, as a workload of a certificate-bound token does: MTLSServer's API takes its
// tokens only with the certificate they are bound to (RFC 8705 §3).
func newReplacedTokens(caPEM, clientCertPEM, clientKeyPEM []byte) (*replacedTokens, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	clientCert, err := tls.X509KeyPair(clientCertPEM, clientKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("the sandbox's client certificate: %w", err)
	}
	tlsConfig := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12}
	return &replacedTokens{last: map[string]string{}, client: &http.Client{Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsConfig}}}, nil
}

// seen records the token in a resource's Secret; after a renewal it returns a note saying
// whether the bank's API still accepts the token the renewal replaced ("" otherwise).
func (w *replacedTokens) seen(ctx context.Context, d *demo, name string, bank providers.Name, token string) string {
	w.mu.Lock()
	previous := w.last[name]
	w.last[name] = token
	w.mu.Unlock()
	apiURL := d.bank.ProtectedAPIURL(bank)
	if previous == "" || previous == token || apiURL == "" {
		return ""
	}
	status, err := w.call(ctx, apiURL, previous)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil && status == http.StatusOK {
		w.accepted++
		return fmt.Sprintf("%s renewed: the token it replaced is still accepted by %s's API (HTTP 200), as a workload reading the Secret late needs", name, bank)
	}
	w.refused++
	return fmt.Sprintf("%s renewed: %s's API REFUSED the token it replaced (HTTP %d %v)", name, bank, status, err)
}

func (w *replacedTokens) call(ctx context.Context, apiURL, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (w *replacedTokens) counts() (accepted, refused int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.accepted, w.refused
}
