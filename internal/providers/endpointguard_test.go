package providers_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

func newGuard(t *testing.T, rules providers.EndpointRules) *providers.EndpointGuard {
	t.Helper()
	g, err := providers.NewEndpointGuard(rules)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// loopbackGuard admits the loopback addresses the tests' fake banks listen on, and refuses
// everything the operator always refuses.
func loopbackGuard() *providers.EndpointGuard {
	g, err := providers.NewEndpointGuard(providers.EndpointRules{AllowLoopback: true})
	if err != nil {
		panic(err) // no host patterns to refuse
	}
	return g
}

// expectRefused checks that the guard refuses target with a rule that names what it is.
func expectRefused(t *testing.T, g *providers.EndpointGuard, target, rule string) {
	t.Helper()
	err := g.CheckAddress(netip.MustParseAddrPort(target))
	if err == nil {
		t.Fatalf("%s was admitted; want refused because %q", target, rule)
	}
	if !strings.Contains(err.Error(), rule) {
		t.Fatalf("%s refused with %q; want the rule %q named", target, err, rule)
	}
}

func expectAdmitted(t *testing.T, g *providers.EndpointGuard, target string) {
	t.Helper()
	if err := g.CheckAddress(netip.MustParseAddrPort(target)); err != nil {
		t.Fatalf("%s refused: %v", target, err)
	}
}

func TestEndpointGuardAlwaysRefusesMetadataLinkLocalUnspecifiedAndMulticast(t *testing.T) {
	// Admitting loopback and allowing everything by CIDR lifts none of these.
	g := newGuard(t, providers.EndpointRules{AllowLoopback: true,
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}})
	for _, c := range []struct{ target, rule string }{
		{"169.254.169.254:80", "169.254.169.254 is a cloud metadata address"},
		{"[::ffff:169.254.169.254]:80", "169.254.169.254 is a cloud metadata address"},
		{"[fd00:ec2::254]:80", "fd00:ec2::254 is a cloud metadata address"},
		{"[fd20:ce::254]:80", "fd20:ce::254 is a cloud metadata address"},
		{"100.100.100.200:80", "100.100.100.200 is a cloud metadata address"},
		{"[64:ff9b::a9fe:a9fe]:80", "169.254.169.254 is a cloud metadata address (through NAT64)"},
		{"169.254.10.20:443", "169.254.10.20 is a link-local address"},
		{"[::ffff:169.254.10.20]:443", "169.254.10.20 is a link-local address"},
		{"[fe80::1]:443", "fe80::1 is a link-local address"},
		{"[fe80::1%eth0]:443", "fe80::1 is a link-local address"},
		{"0.0.0.0:443", "0.0.0.0 is the unspecified address"},
		{"[::]:443", ":: is the unspecified address"},
		{"224.0.0.1:443", "224.0.0.1 is a multicast address"},
		{"[ff02::1]:443", "ff02::1 is a multicast address"},
	} {
		expectRefused(t, g, c.target, c.rule)
	}
}

func TestEndpointGuardRefusesLoopbackUnlessAdmitted(t *testing.T) {
	strict := newGuard(t, providers.EndpointRules{})
	for _, target := range []string{"127.0.0.1:8443", "127.8.9.10:443", "[::1]:443", "[::ffff:127.0.0.1]:443"} {
		expectRefused(t, strict, target, "is a loopback address (admitted only with --allow-loopback-endpoints")
		expectAdmitted(t, loopbackGuard(), target)
	}
	// A bank on a private network is a bank: no rule refuses private ranges by default.
	for _, target := range []string{"10.20.30.40:443", "192.168.1.5:443", "203.0.113.7:443", "[2001:db8::7]:443"} {
		expectAdmitted(t, strict, target)
	}
}

func TestEndpointGuardRefusesTheClusterAPIServer(t *testing.T) {
	g := loopbackGuard()
	expectAdmitted(t, g, "10.96.0.1:443")
	g.SetClusterAPIServer([]netip.AddrPort{
		netip.MustParseAddrPort("10.96.0.1:443"),
		netip.MustParseAddrPort("[fd00:10:96::1]:443"),
		netip.MustParseAddrPort("[::ffff:172.18.0.2]:6443"),
		netip.MustParseAddrPort("127.0.0.1:41234"),
	})
	// Any port of a non-loopback apiserver address: etcd and the kubelet live beside it.
	expectRefused(t, g, "10.96.0.1:443", "10.96.0.1 is the cluster's apiserver")
	expectRefused(t, g, "[::ffff:10.96.0.1]:8443", "10.96.0.1 is the cluster's apiserver")
	expectRefused(t, g, "172.18.0.2:2379", "172.18.0.2 is the cluster's apiserver")
	expectRefused(t, g, "[fd00:10:96::1]:443", "fd00:10:96::1 is the cluster's apiserver")
	// On loopback (admitted only for tests) the apiserver's port alone: the sandbox banks
	// listen on the same address.
	expectRefused(t, g, "127.0.0.1:41234", "127.0.0.1 is the cluster's apiserver")
	expectAdmitted(t, g, "127.0.0.1:41235")
	// Addresses that are no longer the apiserver's are admitted again.
	g.SetClusterAPIServer([]netip.AddrPort{netip.MustParseAddrPort("10.96.0.2:443")})
	expectAdmitted(t, g, "10.96.0.1:443")
	expectRefused(t, g, "10.96.0.2:443", "is the cluster's apiserver")
}

func TestEndpointGuardAppliesThePlatformTeamsRanges(t *testing.T) {
	allowed, err := providers.ParseCIDRs("203.0.113.0/24, 2001:db8::/32,198.51.100.9")
	if err != nil {
		t.Fatal(err)
	}
	denied, err := providers.ParseCIDRs("203.0.113.128/25")
	if err != nil {
		t.Fatal(err)
	}
	g := newGuard(t, providers.EndpointRules{AllowedCIDRs: allowed, DeniedCIDRs: denied})
	expectAdmitted(t, g, "203.0.113.7:443")
	expectAdmitted(t, g, "[::ffff:203.0.113.7]:443")
	expectAdmitted(t, g, "198.51.100.9:443")
	expectAdmitted(t, g, "[2001:db8::5]:443")
	expectRefused(t, g, "203.0.113.200:443", "203.0.113.200 is in 203.0.113.128/25, a denied range (--denied-endpoint-cidrs)")
	expectRefused(t, g, "198.51.100.10:443", "198.51.100.10 is outside the allowed ranges (--allowed-endpoint-cidrs)")
	expectRefused(t, g, "10.0.0.1:443", "10.0.0.1 is outside the allowed ranges")
	expectRefused(t, g, "[2001:db9::5]:443", "2001:db9::5 is outside the allowed ranges")

	onlyDenied := newGuard(t, providers.EndpointRules{DeniedCIDRs: denied})
	expectAdmitted(t, onlyDenied, "10.0.0.1:443")
	expectRefused(t, onlyDenied, "[::ffff:203.0.113.130]:443", "a denied range")

	for _, bad := range []string{"10.0.0.0/33", "bank.example", "10.0.0.1/8/2"} {
		if _, err := providers.ParseCIDRs(bad); err == nil {
			t.Errorf("ParseCIDRs(%q) accepted it", bad)
		}
	}
}

func TestEndpointGuardAdmitsOnlyTheAllowedHosts(t *testing.T) {
	g := newGuard(t, providers.EndpointRules{AllowedHosts: []string{"*.Bank.Example", "token.other.example"}})
	for _, host := range []string{"api.bank.example", "a.b.bank.example", "API.BANK.EXAMPLE.", "token.other.example"} {
		if err := g.CheckHost(host); err != nil {
			t.Errorf("%s refused: %v", host, err)
		}
	}
	for _, host := range []string{"bank.example", "evilbank.example", "bank.example.evil.test", "other.example", "x.token.other.example", "127.0.0.1"} {
		err := g.CheckHost(host)
		if err == nil || !strings.Contains(err.Error(), "matches none of the allowed endpoint hosts (--allowed-endpoint-hosts)") {
			t.Errorf("%s: got %v, want refused by the allowed hosts", host, err)
		}
	}
	if err := newGuard(t, providers.EndpointRules{}).CheckHost("anything.example"); err != nil {
		t.Errorf("without host patterns every host is admitted: %v", err)
	}
	for _, bad := range []string{"*", "bank.*.example", "bank.example:443", "https://bank.example", " "} {
		if _, err := providers.NewEndpointGuard(providers.EndpointRules{AllowedHosts: []string{bad}}); err == nil {
			t.Errorf("host pattern %q accepted", bad)
		}
	}
}

// The local-use NAT64 prefix (RFC 8215) may carry its IPv4 address at any RFC 6052 position,
// so the guard cannot read it: refused unless the platform team allows a range inside it.
func TestEndpointGuardRefusesTheLocalUseNAT64PrefixUnlessARangeInsideItIsAllowed(t *testing.T) {
	const rule = "is in 64:ff9b:1::/48, a local-use NAT64 prefix whose IPv4 address cannot be checked"
	everywhere := newGuard(t, providers.EndpointRules{AllowLoopback: true,
		AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}})
	for _, target := range []string{
		"[64:ff9b:1::a9fe:a9fe]:443",       // 169.254.169.254 in the /96 layout
		"[64:ff9b:1:a9fe:a9:fe00::]:443",   // 169.254.169.254 in the /48 layout
		"[64:ff9b:1:0:a9:fea9:fe00:0]:443", // ... and in the /64 layout
		"[64:ff9b:1::cb00:7107]:443",       // 203.0.113.7, a bank: still unreadable without the team's word
	} {
		expectRefused(t, newGuard(t, providers.EndpointRules{}), target, rule)
		expectRefused(t, everywhere, target, rule) // ::/0 names no NAT64 layout
	}
	nat64, err := providers.ParseCIDRs("64:ff9b:1:0:0:0::/96")
	if err != nil {
		t.Fatal(err)
	}
	admitted := newGuard(t, providers.EndpointRules{AllowedCIDRs: nat64})
	expectAdmitted(t, admitted, "[64:ff9b:1::cb00:7107]:443")
	expectRefused(t, admitted, "[64:ff9b:1:a9fe:a9:fe00::]:443", rule) // outside the allowed /96
	// The well-known prefix stays checked by the IPv4 address it carries.
	expectRefused(t, admitted, "[64:ff9b::a9fe:a9fe]:443", "169.254.169.254 is a cloud metadata address (through NAT64)")
}
