package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// securityFlags are the flags that decide where token calls may connect and which Secrets
// the operator reads: a tenant chooses the endpoint, the platform team these limits.
type securityFlags struct {
	allowLoopback            bool
	allowedCIDRs             string
	deniedCIDRs              string
	allowedHosts             string
	credentialsLabelRequired bool
}

func bindSecurityFlags(fs *flag.FlagSet) *securityFlags {
	f := &securityFlags{}
	fs.BoolVar(&f.allowLoopback, "allow-loopback-endpoints", false,
		"Accept token endpoints on loopback addresses (127.0.0.0/8, ::1). For tests and local sandboxes only: "+
			"in a cluster, loopback is the operator's own Pod. Link-local, cloud metadata, unspecified and multicast "+
			"addresses and the cluster's apiserver are refused whatever the flags.")
	fs.StringVar(&f.allowedCIDRs, "allowed-endpoint-cidrs", "",
		"Comma-separated CIDRs (or addresses) token calls may connect to, checked after DNS resolution on every "+
			"connection, a proxy's included. Empty: any address not otherwise refused.")
	fs.StringVar(&f.deniedCIDRs, "denied-endpoint-cidrs", "",
		"Comma-separated CIDRs (or addresses) token calls must not connect to, e.g. the Pod and node networks.")
	fs.StringVar(&f.allowedHosts, "allowed-endpoint-hosts", "",
		"Comma-separated endpoint hosts that may be called: bank.example exactly, or *.bank.example for any name "+
			"below it. Empty: any host.")
	fs.BoolVar(&f.credentialsLabelRequired, "credentials-label-required", true,
		"Read a referenced Secret (credentials, client assertion key, client certificate) only when it carries the "+
			"label tokens.banktoken.io/credentials=true, so that whoever may create a BankTokenRequest cannot send "+
			"any Secret of their namespace (a database password, a service account token) to an endpoint of their "+
			"choosing. On by default; =false restores the behaviour of releases before it, and is logged as a warning.")
	return f
}

func (f *securityFlags) guard() (*providers.EndpointGuard, error) {
	allowed, err := providers.ParseCIDRs(f.allowedCIDRs)
	if err != nil {
		return nil, fmt.Errorf("--allowed-endpoint-cidrs: %w", err)
	}
	denied, err := providers.ParseCIDRs(f.deniedCIDRs)
	if err != nil {
		return nil, fmt.Errorf("--denied-endpoint-cidrs: %w", err)
	}
	var hosts []string
	for _, h := range strings.Split(f.allowedHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	guard, err := providers.NewEndpointGuard(providers.EndpointRules{
		AllowLoopback: f.allowLoopback, AllowedCIDRs: allowed, DeniedCIDRs: denied, AllowedHosts: hosts})
	if err != nil {
		return nil, fmt.Errorf("--allowed-endpoint-hosts: %w", err)
	}
	return guard, nil
}
