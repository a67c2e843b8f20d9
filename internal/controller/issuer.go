package controller

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	tokensv1alpha1 "github.com/banktoken/bank-token-operator/api/v1alpha1"
	"github.com/banktoken/bank-token-operator/internal/issuermetadata"
	"github.com/banktoken/bank-token-operator/internal/providers"
)

// Issuer metadata. A spec that names an issuer gets the endpoints it leaves out from the
// issuer's metadata (package issuermetadata), read over the TLS material and the endpoint
// guard of the token calls and cached per issuer and TLS inputs. resolveIssuer writes them
// into the effective spec (connection.go) before the request hash is taken, so that the
// hash, the refresh-token binding and the revocation endpoint recorded with a chain all
// follow the endpoint resolved: when the metadata moves the token endpoint, the refresh
// tokens issued under the old one are bound to another hash and are never sent to the new
// one. A spec without an issuer reads nothing here and hashes as before.

// DocumentFetcher reads a metadata document over a request's TLS material and the endpoint
// guard; *providers.Client is the real one.
type DocumentFetcher interface {
	FetchDocument(ctx context.Context, rawURL string, m providers.TLSMaterial, allowInsecureHTTP bool, maxBytes int64) (*providers.Document, error)
	CheckHost(host string) error
}

// issuerMetadataCache is the reconciler's cache of metadata documents, made on first use.
type issuerMetadataCache struct {
	once  sync.Once
	cache *issuermetadata.Cache
}

func (r *BankTokenRequestReconciler) issuerCache() *issuermetadata.Cache {
	r.issuerMetadata.once.Do(func() {
		r.issuerMetadata.cache = &issuermetadata.Cache{Interval: r.IssuerMetadataInterval, Now: r.Clock.Now}
	})
	return r.issuerMetadata.cache
}

// issuerResolution is what the issuer's metadata gave one reconcile.
type issuerResolution struct {
	key    string
	result issuermetadata.Result
	// reread reads the document again at once (after a token call that suggests it moved)
	// and returns the token endpoint it now names for this request.
	reread func(context.Context) (string, bool)
	// status is what status.endpoints reports.
	status tokensv1alpha1.EndpointsStatus
	// unavailable is set when no document could ever be read: nothing can be sent yet.
	unavailable bool
	// moved: a token call failed and the metadata read again names another token endpoint.
	moved bool
}

// retryAt is when a failed read is tried again; zero after a good read.
func (i *issuerResolution) retryAt() time.Time { return i.result.RetryAt }

// issuerCacheKey names a document by its issuer and the TLS inputs it was read over (never
// the key: the certificate names the pair).
func issuerCacheKey(issuer string, m providers.TLSMaterial, insecure bool) string {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(issuer), m.CABundle, m.ClientCertificate, fmt.Appendf(nil, "%t", insecure)} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// resolveIssuer fills the endpoints the spec leaves out from its issuer's metadata, and
// refuses, before any call, a client authentication method or signing algorithm the
// metadata does not list. It runs after the client's Secrets are read (the metadata is read
// over their TLS material) and before the request hash is taken.
func (r *BankTokenRequestReconciler) resolveIssuer(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered) *inputProblem {
	spec := &btr.Spec
	documents, ok := r.Fetcher.(DocumentFetcher)
	if !ok {
		return &inputProblem{tokensv1alpha1.ReasonIssuerMetadataUnavailable, "this operator's bank client cannot read issuer metadata"}
	}
	issuer, tlsMaterial, insecure := spec.Issuer, g.TLS, r.AllowInsecureEndpoints
	fetch := func(ctx context.Context, rawURL string) (int, []byte, error) {
		doc, err := documents.FetchDocument(ctx, rawURL, tlsMaterial, insecure, issuermetadata.MaxDocumentBytes)
		if err != nil {
			return 0, nil, err
		}
		return doc.StatusCode, doc.Body, nil
	}
	check := func(u *url.URL) error {
		if !insecure && !strings.EqualFold(u.Scheme, "https") {
			return errors.New("it is not https")
		}
		return documents.CheckHost(u.Hostname())
	}
	read := func(ctx context.Context) (*issuermetadata.Metadata, error) {
		return issuermetadata.Read(ctx, issuer, fetch, check)
	}
	key := issuerCacheKey(issuer, tlsMaterial, insecure)
	certificateAuthentication := clientAuthentication(spec).IsCertificateBased()
	presentsCertificate := len(tlsMaterial.ClientCertificate) > 0
	res := &issuerResolution{key: key, result: r.issuerCache().Get(ctx, key, read)}
	res.reread = func(ctx context.Context) (string, bool) {
		r.issuerCache().Invalidate(key)
		md := r.issuerCache().Get(ctx, key, read).Metadata
		if md == nil {
			return "", false
		}
		return md.EndpointsFor(md.UsesMTLSAliases(certificateAuthentication, presentsCertificate)).Token, true
	}
	g.Issuer = res
	res.status = tokensv1alpha1.EndpointsStatus{Issuer: issuer}
	if err := res.result.Err; err != nil {
		res.status.MetadataError = issuerErrorReason(err) + ": " + err.Error()
	}
	md := res.result.Metadata
	if md == nil {
		res.unavailable = true
		return &inputProblem{issuerErrorReason(res.result.Err), res.status.MetadataError}
	}
	res.status.MetadataURL = md.Location
	res.status.MetadataReadAt = &metav1.Time{Time: res.result.ReadAt.Truncate(time.Second)}

	auth := clientAuthentication(spec)
	if name := issuermetadata.AuthMethodName(auth); name == "" || !md.SupportsAuthMethod(name) {
		return &inputProblem{tokensv1alpha1.ReasonClientAuthenticationNotSupported, fmt.Sprintf(
			"clientAuthentication %s (%s) is not among the methods issuer %s lists in token_endpoint_auth_methods_supported: %s",
			auth, cmp.Or(name, "no registered name"), issuer, issuermetadata.Quote(strings.Join(md.AuthMethods, ", ")))}
	}
	if auth == providers.ClientAuthPrivateKeyJWT {
		if alg, known := providers.AssertionAlgorithm(g.Credentials.AssertionKey); known && !md.SupportsSigningAlgorithm(alg) {
			return &inputProblem{tokensv1alpha1.ReasonSigningAlgorithmNotSupported, fmt.Sprintf(
				"the client assertion's signing algorithm %s is not among those issuer %s lists in token_endpoint_auth_signing_alg_values_supported: %s",
				alg, issuer, issuermetadata.Quote(strings.Join(md.SigningAlgorithms, ", ")))}
		}
	}
	applyIssuerEndpoints(spec, g, md.EndpointsFor(md.UsesMTLSAliases(auth.IsCertificateBased(), presentsCertificate)), md.Issuer, &res.status)
	return nil
}

// applyIssuerEndpoints writes into the effective spec what it leaves out: the token
// endpoint, the revocation endpoint (only on the token endpoint's scheme and host, as the
// CRD demands of a spec's: a refresh token goes to no other host) and the assertion's
// audience (the issuer, as FAPI 2.0 §5.3.2.1 demands).
func applyIssuerEndpoints(spec *tokensv1alpha1.BankTokenRequestSpec, g *gathered, e issuermetadata.Endpoints, issuer string, status *tokensv1alpha1.EndpointsStatus) {
	status.TokenEndpointSource = tokensv1alpha1.EndpointFromSpec
	if spec.Endpoint == "" {
		spec.Endpoint = e.Token
		status.TokenEndpointSource = sourceOf(e.TokenAlias)
	}
	status.TokenEndpoint = spec.Endpoint
	switch {
	case spec.RevocationEndpoint != "":
		status.RevocationEndpointSource = tokensv1alpha1.EndpointFromSpec
	case e.Revocation != "" && sameOrigin(e.Revocation, spec.Endpoint):
		spec.RevocationEndpoint = e.Revocation
		status.RevocationEndpointSource = sourceOf(e.RevocationAlias)
	}
	if status.RevocationEndpoint = revocationEndpoint(spec); status.RevocationEndpoint != "" && status.RevocationEndpointSource == "" {
		status.RevocationEndpointSource = tokensv1alpha1.EndpointFromProviderDefault
	}
	if spec.ClientAssertion != nil {
		status.AssertionAudienceSource = tokensv1alpha1.EndpointFromSpec
		if spec.ClientAssertion.Audience == "" {
			assertion := *spec.ClientAssertion
			assertion.Audience = issuer
			spec.ClientAssertion = &assertion
			g.Credentials.AssertionKey.Audience = issuer
			status.AssertionAudienceSource = tokensv1alpha1.EndpointFromIssuerMetadata
		}
		status.AssertionAudience = spec.ClientAssertion.Audience
	}
}

func sourceOf(alias bool) tokensv1alpha1.EndpointSource {
	if alias {
		return tokensv1alpha1.EndpointFromMTLSAlias
	}
	return tokensv1alpha1.EndpointFromIssuerMetadata
}

// sameOrigin: both URLs have the same scheme and host (with port).
func sameOrigin(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	return errA == nil && errB == nil && strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}

// issuerErrorReason is the status reason of a failed read.
func issuerErrorReason(err error) string {
	var mdErr *issuermetadata.Error
	if errors.As(err, &mdErr) && mdErr.Reason == issuermetadata.ReasonInvalid {
		return tokensv1alpha1.ReasonIssuerMetadataInvalid
	}
	return tokensv1alpha1.ReasonIssuerMetadataUnavailable
}

// suggestsMovedEndpoint: a token call's failure that a moved endpoint would cause: the URL
// is no token endpoint (404, 405), nothing listens there, or its certificate is for
// another name.
func suggestsMovedEndpoint(f *providers.Error) bool {
	switch {
	case f.StatusCode == 404 || f.StatusCode == 405:
		return true
	case f.StatusCode == 0 && f.NotSent && f.Reason == providers.ReasonEndpointUnreachable:
		return true
	case f.StatusCode == 0 && f.Reason == providers.ReasonTLSError:
		return true
	}
	return false
}

// followMovedEndpoint reads the issuer's metadata again at once after a token call whose
// failure suggests the endpoint moved. When the metadata now names another token endpoint,
// the failure's message says so and the request comes back at once (issuerRequeue): the
// endpoint changes the request hash, and changed inputs are retried promptly (retryGate),
// under a binding no refresh token of the old endpoint has. The failure's class stays: it
// decides whether a refresh token sent was spent.
func (r *BankTokenRequestReconciler) followMovedEndpoint(ctx context.Context, btr *tokensv1alpha1.BankTokenRequest, g *gathered, failure *providers.Error) *providers.Error {
	if g == nil || g.Issuer == nil || !suggestsMovedEndpoint(failure) {
		return failure
	}
	endpoint, ok := g.Issuer.reread(ctx)
	if !ok || endpoint == btr.Spec.Endpoint || g.Issuer.status.TokenEndpointSource == tokensv1alpha1.EndpointFromSpec {
		return failure
	}
	g.Issuer.moved = true
	moved := *failure
	moved.Message += "; the issuer's metadata now names another token endpoint, used from the next attempt"
	return &moved
}

// reportIssuer writes status.endpoints (nil for a spec without an issuer, as before), notes
// in Ready a metadata document that could not be read again, and turns an issuer that could
// never be read from a Stalled problem into a retried one.
func reportIssuer(btr *tokensv1alpha1.BankTokenRequest, g *gathered, o outcome) {
	if btr.Spec.Issuer == "" {
		btr.Status.Endpoints = nil
		return
	}
	if g == nil || g.Issuer == nil {
		// The metadata was not looked at (an input read before it failed): status keeps
		// what it said.
		return
	}
	status := g.Issuer.status
	btr.Status.Endpoints = &status
	if o.kind == outcomeInputProblem && g.Issuer.unavailable {
		// Not the user's to fix: the read is retried with backoff, the held token kept.
		setStalled(btr, "", "")
		setReconciling(btr, o.problem.Reason, o.problem.Message+fmt.Sprintf("; retrying at %s", formatTime(g.Issuer.retryAt())))
		return
	}
	if status.MetadataError != "" && (o.kind == outcomeKept || o.kind == outcomeIssued) {
		if ready := meta.FindStatusCondition(btr.Status.Conditions, tokensv1alpha1.ConditionReady); ready != nil && ready.Status == metav1.ConditionTrue {
			setReady(btr, ready.Status, ready.Reason, ready.Message+fmt.Sprintf(
				"; the issuer's metadata could not be read again (%s), the document read at %s is used",
				status.MetadataError, formatTime(g.Issuer.result.ReadAt)))
		}
	}
}

// issuerRequeue brings a request that names an issuer back when its metadata is due to be
// read again (or a failed read retried), so that a moved endpoint is followed without a
// token call failing first.
func (r *BankTokenRequestReconciler) issuerRequeue(g *gathered, result ctrl.Result, now time.Time) ctrl.Result {
	if g == nil || g.Issuer == nil {
		return result
	}
	due := g.Issuer.retryAt()
	if g.Issuer.moved {
		due = now
	}
	if due.IsZero() {
		due = g.Issuer.result.ReadAt.Add(r.issuerCache().Interval)
		if r.issuerCache().Interval <= 0 {
			due = g.Issuer.result.ReadAt.Add(issuermetadata.DefaultInterval)
		}
	}
	wait := max(due.Sub(now), time.Second)
	if result.RequeueAfter == 0 || wait < result.RequeueAfter {
		result.RequeueAfter = wait
	}
	return result
}
