// Package issuermetadata reads an OAuth 2.0 authorization server's metadata (RFC 8414, and
// OpenID Connect Discovery 1.0 as a fallback) and keeps it in a cache, so that a spec may
// name the issuer instead of its endpoints. It knows nothing of Kubernetes: the caller hands
// it a way to GET a URL (the token calls' TLS settings and endpoint guard) and a check for
// every endpoint a document names.
package issuermetadata
