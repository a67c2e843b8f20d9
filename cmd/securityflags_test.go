package main

import (
	"flag"
	"net/netip"
	"strings"
	"testing"
)

// The values the chart renders (comma-joined lists) are what the manager parses.
func TestSecurityFlagsBuildTheGuardTheyDescribe(t *testing.T) {
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	security := bindSecurityFlags(fs)
	if err := fs.Parse([]string{"--allowed-endpoint-cidrs=203.0.113.0/24,2001:db8::/32", "--denied-endpoint-cidrs=203.0.113.128/25",
		"--allowed-endpoint-hosts=*.bank.example, token.other.example", "--credentials-label-required"}); err != nil {
		t.Fatal(err)
	}
	guard, err := security.guard()
	if err != nil {
		t.Fatal(err)
	}
	if !security.credentialsLabelRequired {
		t.Error("--credentials-label-required was not read")
	}
	for target, refused := range map[string]bool{"203.0.113.7:443": false, "[2001:db8::1]:443": false,
		"203.0.113.200:443": true, "198.51.100.1:443": true, "127.0.0.1:443": true} {
		if err := guard.CheckAddress(netip.MustParseAddrPort(target)); (err != nil) != refused {
			t.Errorf("%s: refused = %v, want %v", target, err != nil, refused)
		}
	}
	if guard.CheckHost("api.bank.example") != nil || guard.CheckHost("token.other.example") != nil || guard.CheckHost("evil.example") == nil {
		t.Error("--allowed-endpoint-hosts is not applied")
	}
}

func TestSecurityFlagsRefuseWhatTheyCannotParse(t *testing.T) {
	for _, arg := range []string{"--allowed-endpoint-cidrs=10.0.0.0/33", "--denied-endpoint-cidrs=bank.example", "--allowed-endpoint-hosts=bank.*.example"} {
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		security := bindSecurityFlags(fs)
		if err := fs.Parse([]string{arg}); err != nil {
			t.Fatal(err)
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		if _, err := security.guard(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: got %v, want an error naming the flag", arg, err)
		}
	}
}
