// Command sandbox-bank serves fake token endpoints for the five banks over TLS, for
// `make demo` and local experiments. The credentials it prints are fixture values.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/banktoken/bank-token-operator/internal/providers"
	"github.com/banktoken/bank-token-operator/internal/sandbox"
)

func main() {
	var (
		listen        = flag.String("listen", "127.0.0.1:8443", "address to serve TLS on")
		caFile        = flag.String("ca-file", "", "write the CA certificate (PEM) to this file")
		clientCertDir = flag.String("client-cert-dir", "", "write tls.crt and tls.key (a client certificate for RAKBANK partner mTLS) to this directory")
		lifetime      = flag.Duration("lifetime", 30*time.Second, "access token lifetime for every bank")
		hosts         = flag.String("hosts", "", "comma-separated extra names or IPs for the server certificate; the first is used in the printed URLs")
		quiet         = flag.Bool("quiet", false, "do not log each token call")
	)
	flag.Parse()
	if err := run(*listen, *caFile, *clientCertDir, *lifetime, splitList(*hosts), *quiet); err != nil {
		log.Fatalf("sandbox-bank: %v", err)
	}
}

func run(listen, caFile, clientCertDir string, lifetime time.Duration, hosts []string, quiet bool) error {
	lifetimes := map[providers.Name]time.Duration{}
	for _, b := range sandbox.Banks() {
		lifetimes[b] = lifetime
	}
	opts := sandbox.Options{Lifetimes: lifetimes, Hosts: hosts}
	if !quiet {
		opts.Logf = log.Printf
	}
	srv, err := sandbox.StartOn(listen, opts)
	if err != nil {
		return err
	}
	defer srv.Close()

	if caFile != "" {
		if err := os.WriteFile(caFile, srv.CABundle(), 0o644); err != nil {
			return fmt.Errorf("write CA: %w", err)
		}
	}
	if clientCertDir != "" {
		certPEM, keyPEM := srv.ClientCertificate()
		if err := os.MkdirAll(clientCertDir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(clientCertDir, "tls.crt"), certPEM, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(clientCertDir, "tls.key"), keyPEM, 0o600); err != nil {
			return err
		}
	}
	printBanks(os.Stdout, srv, lifetime)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	sig := <-stop
	log.Printf("sandbox-bank: %s, shutting down", sig)
	return nil
}

// printBanks shows each endpoint and the fixture credentials it accepts.
func printBanks(w io.Writer, srv *sandbox.Server, lifetime time.Duration) {
	fmt.Fprintf(w, "sandbox-bank serving on %s (access tokens live %s)\n", srv.URL(), lifetime)
	for _, name := range sandbox.Banks() {
		c := srv.Credentials(name)
		p, _ := providers.PresetFor(name)
		fmt.Fprintf(w, "\n%s\n  token URL:     %s\n  grant:         %s\n  client auth:   %s\n", name, srv.TokenURL(name), p.DefaultGrant, p.DefaultClientAuthentication)
		if u := srv.RevocationURL(name); u != "" {
			fmt.Fprintf(w, "  revocation:    %s\n", u)
		}
		fmt.Fprintf(w, "  protected API: GET %s (Authorization: Bearer <token>)\n", srv.ProtectedAPIURL(name))
		fmt.Fprintf(w, "  client_id:     %s\n  client_secret: %s\n", c.ClientID, c.ClientSecret)
		if c.Username != "" {
			fmt.Fprintf(w, "  username:      %s\n  password:      %s\n", c.Username, c.Password)
		}
		if c.Scope != "" {
			fmt.Fprintf(w, "  scope:         %s\n", c.Scope)
		}
		for _, h := range c.Headers {
			fmt.Fprintf(w, "  header:        %s: %s\n", h.Name, h.Value)
		}
		for _, k := range slices.Sorted(maps.Keys(c.Metadata)) {
			fmt.Fprintf(w, "  metadata:      %s=%s\n", k, c.Metadata[k])
		}
		if name == providers.RAKBankPartner {
			fmt.Fprintln(w, "  mTLS:          client certificate required (see --client-cert-dir)")
		}
	}
	fmt.Fprintln(w)
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
