package main

import (
	"crypto/tls"
	"flag"
	"path/filepath"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// metricsFlags say how the metrics endpoint is served: as kubebuilder's scaffold serves it,
// over HTTPS, to callers the apiserver authenticates (TokenReview) and authorizes
// (SubjectAccessReview: get on the non-resource URL /metrics, which the metrics-reader
// ClusterRole grants). Token expiries and failure reasons per resource are no one else's
// business.
type metricsFlags struct {
	bindAddress string
	secure      bool
	// certDir holds certName and keyName; empty: controller-runtime makes a self-signed
	// certificate at start, which a scraper can only skip verifying.
	certDir, certName, keyName string
	enableHTTP2                bool
}

func (m *metricsFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&m.bindAddress, "metrics-bind-address", ":8443",
		"The address the metrics endpoint binds to (HTTPS with --metrics-secure, else HTTP). Use 0 to disable it.")
	fs.BoolVar(&m.secure, "metrics-secure", true,
		"Serve metrics over HTTPS, only to callers the apiserver authenticates and authorizes for GET /metrics. "+
			"--metrics-secure=false serves plain HTTP to anyone: for a loopback address only.")
	fs.StringVar(&m.certDir, "metrics-cert-path", "",
		"The directory that holds the metrics server's certificate and key (reloaded when they change). "+
			"Empty: a self-signed certificate made at start.")
	fs.StringVar(&m.certName, "metrics-cert-name", "tls.crt", "The metrics server certificate's file name in --metrics-cert-path.")
	fs.StringVar(&m.keyName, "metrics-cert-key", "tls.key", "The metrics server key's file name in --metrics-cert-path.")
	fs.BoolVar(&m.enableHTTP2, "enable-http2", false,
		"Serve metrics over HTTP/2 too. Off: HTTP/2 Rapid Reset and Stream Cancellation (CVE-2023-44487, CVE-2023-39325).")
}

// serverOptions are the metrics server's options, and the watcher of the certificate files
// when a directory was given: the manager must run it.
func (m *metricsFlags) serverOptions() (metricsserver.Options, *certwatcher.CertWatcher, error) {
	opts := metricsserver.Options{BindAddress: m.bindAddress, SecureServing: m.secure}
	if !m.enableHTTP2 {
		opts.TLSOpts = append(opts.TLSOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	if m.secure {
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	if m.certDir == "" {
		return opts, nil, nil
	}
	watcher, err := certwatcher.New(filepath.Join(m.certDir, m.certName), filepath.Join(m.certDir, m.keyName))
	if err != nil {
		return opts, nil, err
	}
	opts.TLSOpts = append(opts.TLSOpts, func(c *tls.Config) { c.GetCertificate = watcher.GetCertificate })
	return opts, watcher, nil
}
