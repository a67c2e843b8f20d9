package issuermetadata_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/banktoken/bank-token-operator/internal/issuermetadata"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

func TestLocationsInsertTheWellKnownSuffixBeforeTheIssuersPath(t *testing.T) {
	for issuer, want := range map[string][2]string{
		"https://as.example":                 {"https://as.example/.well-known/oauth-authorization-server", "https://as.example/.well-known/openid-configuration"},
		"https://as.example/":                {"https://as.example/.well-known/oauth-authorization-server", "https://as.example/.well-known/openid-configuration"},
		"https://as.example/tenant/of":       {"https://as.example/.well-known/oauth-authorization-server/tenant/of", "https://as.example/tenant/of/.well-known/openid-configuration"},
		"https://as.example:8443/realms/ob/": {"https://as.example:8443/.well-known/oauth-authorization-server/realms/ob", "https://as.example:8443/realms/ob/.well-known/openid-configuration"},
	} {
		rfc8414, oidc, err := issuermetadata.Locations(issuer)
		if err != nil || rfc8414 != want[0] || oidc != want[1] {
			t.Errorf("%s: got %s, %s, %v; want %s, %s", issuer, rfc8414, oidc, err, want[0], want[1])
		}
	}
	for _, bad := range []string{"as.example/x", "https://as.example/?q=1", "https://as.example/#f", "https://user@as.example/"} {
		if _, _, err := issuermetadata.Locations(bad); err == nil {
			t.Errorf("%s: admitted", bad)
		}
	}
}

// documents is a Fetch answering from a table of URL -> (status, JSON document).
type documents map[string]struct {
	status int
	doc    any
}

func (d documents) fetch(_ context.Context, rawURL string) (int, []byte, error) {
	answer, ok := d[rawURL]
	if !ok {
		return http.StatusNotFound, []byte("not found"), nil
	}
	body, _ := json.Marshal(answer.doc)
	return answer.status, body, nil
}

func metadataOf(issuer string) map[string]any {
	return map[string]any{
		"issuer":                                issuer,
		"token_endpoint":                        "https://as.example/of/token",
		"revocation_endpoint":                   "https://as.example/of/revoke",
		"token_endpoint_auth_methods_supported": []string{"private_key_jwt", "tls_client_auth"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"PS256", "ES256"},
		"tls_client_certificate_bound_access_tokens":       true,
		"mtls_endpoint_aliases": map[string]string{
			"token_endpoint": "https://mtls.as.example/of/token", "revocation_endpoint": "https://mtls.as.example/of/revoke",
		},
	}
}

func TestReadTakesTheRFC8414DocumentAndItsMTLSAliases(t *testing.T) {
	issuer := "https://as.example/of"
	docs := documents{"https://as.example/.well-known/oauth-authorization-server/of": {200, metadataOf(issuer)}}
	md, err := issuermetadata.Read(context.Background(), issuer, docs.fetch, nil)
	if err != nil {
		t.Fatal(err)
	}
	if md.Location != "https://as.example/.well-known/oauth-authorization-server/of" {
		t.Errorf("location %s", md.Location)
	}
	plain, mtls := md.EndpointsFor(false), md.EndpointsFor(md.UsesMTLSAliases(false, true))
	if plain.Token != "https://as.example/of/token" || plain.TokenAlias {
		t.Errorf("plain %+v", plain)
	}
	if mtls.Token != "https://mtls.as.example/of/token" || !mtls.TokenAlias || mtls.Revocation != "https://mtls.as.example/of/revoke" {
		t.Errorf("a client presenting a certificate to a binding server: %+v", mtls)
	}
	if md.UsesMTLSAliases(false, false) || !md.UsesMTLSAliases(true, false) {
		t.Error("aliases are for certificate authentication, or a certificate presented to a binding server")
	}
	if !md.SupportsAuthMethod("private_key_jwt") || md.SupportsAuthMethod("client_secret_basic") ||
		!md.SupportsSigningAlgorithm("PS256") || md.SupportsSigningAlgorithm("RS256") {
		t.Errorf("methods %v algorithms %v", md.AuthMethods, md.SigningAlgorithms)
	}
}

func TestReadFallsBackToOpenIDConnectDiscoveryOn404(t *testing.T) {
	issuer := "https://as.example/realms/ob"
	doc := metadataOf(issuer)
	delete(doc, "token_endpoint_auth_methods_supported")
	docs := documents{"https://as.example/realms/ob/.well-known/openid-configuration": {200, doc}}
	md, err := issuermetadata.Read(context.Background(), issuer, docs.fetch, nil)
	if err != nil {
		t.Fatal(err)
	}
	if md.Location != "https://as.example/realms/ob/.well-known/openid-configuration" {
		t.Errorf("location %s", md.Location)
	}
	if strings.Join(md.AuthMethods, ",") != "client_secret_basic" {
		t.Errorf("RFC 8414's default method is client_secret_basic; got %v", md.AuthMethods)
	}
}

func TestReadDoesNotFallBackOnOtherFailures(t *testing.T) {
	issuer := "https://as.example/of"
	docs := documents{
		"https://as.example/.well-known/oauth-authorization-server/of": {503, map[string]string{}},
		"https://as.example/of/.well-known/openid-configuration":       {200, metadataOf(issuer)},
	}
	_, err := issuermetadata.Read(context.Background(), issuer, docs.fetch, nil)
	if reasonOf(err) != issuermetadata.ReasonUnavailable {
		t.Fatalf("got %v", err)
	}
}

func TestReadRefusesADocumentOfAnotherIssuer(t *testing.T) {
	for _, other := range []string{"https://as.example/of/", "https://AS.example/of", "https://evil.example/of", ""} {
		docs := documents{"https://as.example/.well-known/oauth-authorization-server/of": {200, metadataOf(other)}}
		_, err := issuermetadata.Read(context.Background(), "https://as.example/of", docs.fetch, nil)
		if reasonOf(err) != issuermetadata.ReasonInvalid || !strings.Contains(err.Error(), "RFC 8414") {
			t.Errorf("issuer %q: got %v", other, err)
		}
	}
}

func TestReadAppliesTheEndpointCheckToEveryEndpointNamed(t *testing.T) {
	issuer := "https://as.example/of"
	for _, field := range []string{"token_endpoint", "revocation_endpoint", "mtls"} {
		doc := metadataOf(issuer)
		if field == "mtls" {
			doc["mtls_endpoint_aliases"] = map[string]string{"token_endpoint": "https://169.254.169.254/latest/token"}
		} else {
			doc[field] = "https://169.254.169.254/latest/token"
		}
		docs := documents{"https://as.example/.well-known/oauth-authorization-server/of": {200, doc}}
		refuseMetadataAddress := func(u *url.URL) error {
			if u.Hostname() == "169.254.169.254" {
				return errors.New("a cloud metadata address")
			}
			return nil
		}
		_, err := issuermetadata.Read(context.Background(), issuer, docs.fetch, refuseMetadataAddress)
		if reasonOf(err) != issuermetadata.ReasonInvalid || !strings.Contains(err.Error(), "cloud metadata") {
			t.Errorf("%s: got %v", field, err)
		}
	}
}

func reasonOf(err error) string {
	var mdErr *issuermetadata.Error
	if errors.As(err, &mdErr) {
		return mdErr.Reason
	}
	return fmt.Sprintf("not an issuermetadata.Error: %v", err)
}

// TestReadOverTheTokenClientsTransport reads through providers.Client.FetchDocument, as
// the controller does: the guard and the size cap of the token calls apply.
func TestReadOverTheTokenClientsTransport(t *testing.T) {
	var issuer string
	big := false
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/oauth-authorization-server/of" {
			http.NotFound(w, r)
			return
		}
		doc := metadataOf(issuer)
		if big {
			doc["padding"] = strings.Repeat("x", issuermetadata.MaxDocumentBytes)
		}
		_ = json.NewEncoder(w).Encode(doc)
	}))
	defer srv.Close()
	issuer = srv.URL + "/of"
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	fetchWith := func(guard *providers.EndpointGuard) issuermetadata.Fetch {
		client := providers.NewClient(providers.ClientOptions{Guard: guard})
		return func(ctx context.Context, rawURL string) (int, []byte, error) {
			doc, err := client.FetchDocument(ctx, rawURL, providers.TLSMaterial{CABundle: ca}, false, issuermetadata.MaxDocumentBytes)
			if err != nil {
				return 0, nil, err
			}
			return doc.StatusCode, doc.Body, nil
		}
	}
	loopback, _ := providers.NewEndpointGuard(providers.EndpointRules{AllowLoopback: true})
	if _, err := issuermetadata.Read(context.Background(), issuer, fetchWith(loopback), nil); err != nil {
		t.Fatalf("allowed: %v", err)
	}
	noLoopback, _ := providers.NewEndpointGuard(providers.EndpointRules{})
	if _, err := issuermetadata.Read(context.Background(), issuer, fetchWith(noLoopback), nil); reasonOf(err) != issuermetadata.ReasonUnavailable ||
		!strings.Contains(err.Error(), "refused") {
		t.Fatalf("a guard refusing loopback: got %v", err)
	}
	big = true
	if _, err := issuermetadata.Read(context.Background(), issuer, fetchWith(loopback), nil); err == nil ||
		!strings.Contains(err.Error(), "more than") {
		t.Fatalf("an oversized document: got %v", err)
	}
}

func TestReadQuotesAndBoundsWhatADocumentHolds(t *testing.T) {
	issuer := "https://as.example/of"
	doc := metadataOf(strings.Repeat("i", 10000))
	docs := documents{"https://as.example/.well-known/oauth-authorization-server/of": {200, doc}}
	_, err := issuermetadata.Read(context.Background(), issuer, docs.fetch, nil)
	if err == nil || len(err.Error()) > 1000 {
		t.Fatalf("a long issuer is quoted whole: %d bytes", len(err.Error()))
	}
	doc = metadataOf(issuer)
	doc["token_endpoint"] = "https://as.example/" + strings.Repeat("t", 3000)
	docs = documents{"https://as.example/.well-known/oauth-authorization-server/of": {200, doc}}
	if _, err := issuermetadata.Read(context.Background(), issuer, docs.fetch, nil); reasonOf(err) != issuermetadata.ReasonInvalid {
		t.Fatalf("an endpoint longer than the CRD admits: %v", err)
	}
}
