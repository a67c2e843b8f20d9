package providers

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func testKey(t *testing.T, kind string) (crypto.Signer, Secret) {
	t.Helper()
	var key crypto.Signer
	var err error
	switch kind {
	case "EC":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EC-P384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "RSA-1024":
		key, err = rsa.GenerateKey(rand.Reader, 1024)
	default:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return key, Secret(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func privateKeyJWTRequest(key Secret) Request {
	r := validRequest(OAuth2)
	r.GrantType, r.ClientAuthentication = GrantClientCredentials, ClientAuthPrivateKeyJWT
	r.Credentials.AssertionKey = AssertionKey{PrivateKey: key, KeyID: "key-2026-01"}
	return r
}

func TestClientAssertionClaims(t *testing.T) {
	for _, tc := range []struct{ kind, algorithm, wantAlg string }{
		{"RSA", "", "RS256"}, {"RSA", AlgorithmPS256, "PS256"}, {"EC", "", "ES256"},
	} {
		t.Run(tc.wantAlg, func(t *testing.T) {
			key, pemKey := testKey(t, tc.kind)
			req := privateKeyJWTRequest(pemKey)
			req.Credentials.AssertionKey.Algorithm = tc.algorithm
			c, perr := plan(req)
			if perr != nil {
				t.Fatal(perr)
			}
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			signed, perr := c.signer.sign("client", "jti-1", now)
			if perr != nil {
				t.Fatal(perr)
			}
			claims := jwt.MapClaims{}
			token, err := jwt.NewParser(jwt.WithTimeFunc(func() time.Time { return now })).ParseWithClaims(signed.Reveal(), claims,
				func(*jwt.Token) (any, error) { return key.Public(), nil })
			if err != nil {
				t.Fatal(err)
			}
			if token.Method.Alg() != tc.wantAlg || token.Header["kid"] != "key-2026-01" {
				t.Errorf("alg %s kid %v, want %s and key-2026-01", token.Method.Alg(), token.Header["kid"], tc.wantAlg)
			}
			want := jwt.MapClaims{"iss": "client", "sub": "client", "aud": "https://bank.example/token", "jti": "jti-1",
				"iat": float64(now.Unix()), "exp": float64(now.Add(time.Minute).Unix())}
			if got, _ := json.Marshal(claims); string(got) != mustJSON(t, want) {
				t.Errorf("claims %s, want %s", got, mustJSON(t, want))
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestClientAssertionAudienceFromTheSpec(t *testing.T) {
	_, pemKey := testKey(t, "EC")
	req := privateKeyJWTRequest(pemKey)
	req.Credentials.AssertionKey.Audience = "https://bank.example/realms/open-banking"
	c, perr := plan(req)
	if perr != nil {
		t.Fatal(perr)
	}
	signed, _ := c.signer.sign("client", "jti-1", time.Now())
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(signed.Reveal(), claims); err != nil {
		t.Fatal(err)
	}
	if claims["aud"] != "https://bank.example/realms/open-banking" {
		t.Errorf("aud = %v", claims["aud"])
	}
}

// formSent is the form of the one call a request makes, and its Authorization header.
func formSent(t *testing.T, req Request, opts ClientOptions) (url.Values, string) {
	t.Helper()
	var form url.Values
	var authorization string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ = url.ParseQuery(string(body))
		authorization = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"at","token_type":"Bearer","expires_in":300}`)
	}))
	defer srv.Close()
	req.TokenEndpoint, req.AllowInsecureHTTP = srv.URL+"/token", true
	if opts.Guard == nil {
		opts.Guard = loopbackGuard()
	}
	if _, err := NewClient(opts).Fetch(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	return form, authorization
}

func TestPrivateKeyJWTSendsAnAssertionAndNoSecret(t *testing.T) {
	_, pemKey := testKey(t, "RSA")
	req := privateKeyJWTRequest(pemKey)
	var jtis []string
	for range 2 {
		form, authorization := formSent(t, req, ClientOptions{})
		if authorization != "" || form.Has("client_secret") {
			t.Errorf("a secret travelled: Authorization %q, client_secret %v", authorization, form.Has("client_secret"))
		}
		if form.Get("client_id") != "client" || form.Get("client_assertion_type") != ClientAssertionType {
			t.Errorf("form %v", form)
		}
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(form.Get("client_assertion"), claims); err != nil {
			t.Fatal(err)
		}
		exp, _ := claims.GetExpirationTime()
		iat, _ := claims.GetIssuedAt()
		// formSent points the request at its server: the audience is that token URL.
		if aud, _ := claims["aud"].(string); exp.Sub(iat.Time) > time.Minute || !strings.HasPrefix(aud, "http://127.0.0.1:") || !strings.HasSuffix(aud, "/token") {
			t.Errorf("exp %v iat %v aud %v", exp, iat, claims["aud"])
		}
		jtis = append(jtis, claims["jti"].(string))
	}
	if jtis[0] == jtis[1] {
		t.Errorf("jti %q used twice", jtis[0])
	}
}

func TestCertificateClientAuthenticationSendsOnlyTheClientID(t *testing.T) {
	for _, method := range []ClientAuthentication{ClientAuthTLS, ClientAuthSelfSignedTLS} {
		req := validRequest(OAuth2)
		req.GrantType, req.ClientAuthentication = GrantClientCredentials, method
		req.TLS.ClientCertificate = []byte("presented in the handshake")
		c, perr := plan(req)
		if perr != nil {
			t.Fatal(perr)
		}
		r, perr := c.newHTTPRequest(context.Background(), "msg-1")
		if perr != nil {
			t.Fatal(perr)
		}
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		want := url.Values{"grant_type": {"client_credentials"}, "scope": {"accounts"}, "client_id": {"client"}}
		if authorization := r.Header.Get("Authorization"); authorization != "" || !equalValues(form, want) {
			t.Errorf("%s: form %v, Authorization %q; want %v and none", method, form, authorization, want)
		}
	}
}

func TestPlanRefusesClientProofThatCannotWork(t *testing.T) {
	_, rsaKey := testKey(t, "RSA")
	_, ecKey := testKey(t, "EC")
	_, p384Key := testKey(t, "EC-P384")
	_, smallKey := testKey(t, "RSA-1024")
	jwtWith := func(key Secret, algorithm string) func(*Request) {
		return func(r *Request) {
			*r = privateKeyJWTRequest(key)
			r.Credentials.AssertionKey.Algorithm = algorithm
		}
	}
	cases := []struct {
		name       string
		mutate     func(*Request)
		wantReason string
	}{
		{"PrivateKeyJWT without a key", jwtWith("", ""), ReasonInvalidClientAssertion},
		{"a key that is not PEM", jwtWith("not a key", ""), ReasonInvalidClientAssertion},
		{"a certificate instead of a key", jwtWith("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ""), ReasonInvalidClientAssertion},
		{"an RSA key under 2048 bits", jwtWith(smallKey, ""), ReasonInvalidClientAssertion},
		{"ES256 with an RSA key", jwtWith(rsaKey, AlgorithmES256), ReasonInvalidClientAssertion},
		{"PS256 with an EC key", jwtWith(ecKey, AlgorithmPS256), ReasonInvalidClientAssertion},
		{"an EC key off P-256", jwtWith(p384Key, ""), ReasonInvalidClientAssertion},
		{"HS256", jwtWith(rsaKey, "HS256"), ReasonInvalidClientAssertion},
		{"a signing key with Basic", func(r *Request) {
			*r = privateKeyJWTRequest(rsaKey)
			r.ClientAuthentication = ClientAuthBasic
		}, ReasonInvalidProviderRequest},
		{"TLSClientAuth without a client certificate", func(r *Request) {
			r.Provider, r.GrantType, r.ClientAuthentication = OAuth2, GrantClientCredentials, ClientAuthTLS
		}, ReasonInvalidTLSConfig},
		{"SelfSignedTLSClientAuth at Banfico, whose Keycloak has no such authenticator", func(r *Request) {
			r.Provider, r.GrantType, r.ClientAuthentication = Banfico, "", ClientAuthSelfSignedTLS
			r.TLS.ClientCertificate = []byte("cert")
		}, ReasonInvalidProviderRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := validRequest(Paymob)
			tc.mutate(&req)
			err := Check(req)
			e, ok := err.(*Error)
			if !ok || e.Class != ClassConfiguration || e.Reason != tc.wantReason {
				t.Fatalf("Check = %v, want %s/%s", err, ClassConfiguration, tc.wantReason)
			}
			if strings.Contains(e.Message, "PRIVATE KEY") {
				t.Errorf("message %q quotes the key", e.Message)
			}
		})
	}
}

func TestPrivateKeyJWTNeedsNoClientSecret(t *testing.T) {
	_, pemKey := testKey(t, "EC")
	req := privateKeyJWTRequest(pemKey)
	req.Credentials.ClientSecret = ""
	if err := Check(req); err != nil {
		t.Fatal(err)
	}
}

func TestCertificateBoundTokenThumbprint(t *testing.T) {
	sum := sha256.Sum256([]byte("certificate DER"))
	thumbprint := base64.RawURLEncoding.EncodeToString(sum[:])
	for _, tc := range []struct {
		name string
		cnf  any
		want string
	}{
		{"bound", map[string]any{"x5t#S256": thumbprint}, thumbprint},
		{"not bound", nil, ""},
		{"not a SHA-256 thumbprint", map[string]any{"x5t#S256": "<script>"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}
			if tc.cnf != nil {
				claims["cnf"] = tc.cnf
			}
			at, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("test-signing-key"))
			if err != nil {
				t.Fatal(err)
			}
			tok, _, err := parseTokenResponse([]byte(`{"access_token":"`+at+`","token_type":"Bearer"}`), tokenOptions{now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if tok.CertificateThumbprint != tc.want {
				t.Errorf("thumbprint %q, want %q", tok.CertificateThumbprint, tc.want)
			}
		})
	}
}

func TestARefusedAssertionIsNeverEchoed(t *testing.T) {
	_, pemKey := testKey(t, "RSA")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client",
			"error_description": "bad assertion " + r.PostForm.Get("client_assertion")})
	}))
	defer srv.Close()
	req := privateKeyJWTRequest(pemKey)
	req.TokenEndpoint, req.AllowInsecureHTTP = srv.URL+"/token", true
	_, err := NewClient(ClientOptions{Guard: loopbackGuard()}).Fetch(context.Background(), req)
	e, ok := err.(*Error)
	if !ok || e.Class != ClassPermanent || e.Reason != ReasonInvalidClientAssertion {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(e.Message, "eyJ") {
		t.Errorf("message %q holds the assertion", e.Message)
	}
}
