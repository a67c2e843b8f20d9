package providers

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// The endpoint is a tenant's choice, dialled from the operator's network position. The
// guard checks every address actually dialled, after DNS resolution and on every
// connection (a proxy's too), so that a name rebound to another address between two
// calls cannot pass it.
//
// Written by hand on net/netip: the rules are a few prefix tests plus the cluster's own
// apiserver, which changes at run time. SSRF libraries (code.dny.dev/ssrf and the like)
// refuse every special-purpose range, private ones included, where banks reached over
// private links live, and know nothing of the apiserver.

// ReasonEndpointRefused: the endpoint's host or address is one the operator may not connect
// to (link-local, cloud metadata, the cluster's apiserver, loopback, or outside the
// platform team's rules).
const ReasonEndpointRefused = "EndpointRefused"

// EndpointRules say where token calls may connect, beyond what is always refused
// (unspecified, link-local, multicast, cloud metadata addresses and the cluster's apiserver).
type EndpointRules struct {
	// AllowLoopback admits 127.0.0.0/8 and ::1 (tests and local sandboxes).
	AllowLoopback bool
	// AllowedCIDRs, when not empty, is the only place calls may connect to.
	AllowedCIDRs []netip.Prefix
	// DeniedCIDRs are refused.
	DeniedCIDRs []netip.Prefix
	// AllowedHosts, when not empty, are the only endpoint hosts: "bank.example" exactly, or
	// "*.bank.example" for any name below bank.example.
	AllowedHosts []string
}

// metadataAddresses are the clouds' instance metadata and platform endpoints: they hand
// out the node's credentials to whoever asks from inside.
var metadataAddresses = map[netip.Addr]bool{
	netip.MustParseAddr("169.254.169.254"): true, // AWS, GCP, Azure, OpenStack, Oracle
	netip.MustParseAddr("fd00:ec2::254"):   true, // AWS over IPv6
	netip.MustParseAddr("fd20:ce::254"):    true, // GCP over IPv6
	netip.MustParseAddr("100.100.100.200"): true, // Alibaba Cloud
	netip.MustParseAddr("168.63.129.16"):   true, // Azure's platform (WireServer)
}

// nat64Prefix (RFC 6052) reaches an IPv4 address through a NAT64 gateway: the embedded
// address is checked too.
var nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")

// localNAT64Prefix (RFC 8215) is laid out by each network: the IPv4 address may sit at any
// RFC 6052 position (/48 to /96), so it cannot be read and checked; an address in it is
// refused unless an allowed range inside the prefix admits it (the platform team's word).
var localNAT64Prefix = netip.MustParsePrefix("64:ff9b:1::/48")

// EndpointGuard applies EndpointRules and knows the cluster's apiserver addresses. It is
// safe for concurrent use.
type EndpointGuard struct {
	rules     EndpointRules
	apiServer atomic.Pointer[[]netip.AddrPort]
}

// NewEndpointGuard checks the host patterns and returns a guard.
func NewEndpointGuard(rules EndpointRules) (*EndpointGuard, error) {
	rules.AllowedHosts = append([]string(nil), rules.AllowedHosts...)
	for i, pattern := range rules.AllowedHosts {
		pattern = strings.ToLower(strings.TrimSpace(pattern))
		if pattern == "" || strings.Contains(strings.TrimPrefix(pattern, "*."), "*") || strings.ContainsAny(pattern, "/:") {
			return nil, fmt.Errorf("allowed endpoint host %q: want a host name or *.domain", rules.AllowedHosts[i])
		}
		rules.AllowedHosts[i] = pattern
	}
	return &EndpointGuard{rules: rules}, nil
}

// SetClusterAPIServer replaces the apiserver's known addresses. A loopback address is
// refused on its port only: with loopback admitted (tests) the sandbox banks share the
// apiserver's host. Any other address is refused whole, since its other ports (etcd, the
// kubelet) are no banks either.
func (g *EndpointGuard) SetClusterAPIServer(addrs []netip.AddrPort) {
	own := make([]netip.AddrPort, len(addrs))
	for i, a := range addrs {
		own[i] = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	g.apiServer.Store(&own)
}

// EndpointRefusedError says which rule refused an address or host.
type EndpointRefusedError struct {
	// Target is the address or host refused; Rule says why, naming it.
	Target string
	Rule   string
}

func (e *EndpointRefusedError) Error() string {
	return "connecting to " + e.Target + " refused: " + e.Rule
}

// CheckHost refuses an endpoint host that matches none of AllowedHosts.
func (g *EndpointGuard) CheckHost(host string) error {
	if len(g.rules.AllowedHosts) == 0 {
		return nil
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, pattern := range g.rules.AllowedHosts {
		if suffix, wild := strings.CutPrefix(pattern, "*"); wild && strings.HasSuffix(host, suffix) || host == pattern {
			return nil
		}
	}
	return &EndpointRefusedError{Target: host, Rule: "host " + host + " matches none of the allowed endpoint hosts (--allowed-endpoint-hosts)"}
}

// CheckAddress refuses an address the rules do not admit; nil admits it.
func (g *EndpointGuard) CheckAddress(target netip.AddrPort) error {
	addr := target.Addr().Unmap().WithZone("")
	if rule := g.alwaysRefused(addr, target.Port()); rule != "" {
		return &EndpointRefusedError{Target: target.String(), Rule: rule}
	}
	if nat64Prefix.Contains(addr) {
		embedded := addr.As16()
		if rule := g.alwaysRefused(netip.AddrFrom4([4]byte(embedded[12:])), target.Port()); rule != "" {
			return &EndpointRefusedError{Target: target.String(), Rule: rule + " (through NAT64)"}
		}
	}
	if localNAT64Prefix.Contains(addr) && !g.admitsLocalNAT64(addr) {
		return &EndpointRefusedError{Target: target.String(), Rule: fmt.Sprintf("%s is in %s, a local-use NAT64 prefix whose IPv4 address "+
			"cannot be checked (admitted only by an --allowed-endpoint-cidrs range inside it)", addr, localNAT64Prefix)}
	}
	if rule := g.refusedByRules(addr); rule != "" {
		return &EndpointRefusedError{Target: target.String(), Rule: rule}
	}
	return nil
}

// alwaysRefused names the rule no flag lifts, "" when none applies.
func (g *EndpointGuard) alwaysRefused(addr netip.Addr, port uint16) string {
	switch {
	case metadataAddresses[addr]:
		return addr.String() + " is a cloud metadata address"
	case addr.IsUnspecified():
		return addr.String() + " is the unspecified address"
	case addr.IsLinkLocalUnicast():
		return addr.String() + " is a link-local address"
	case addr.IsMulticast():
		return addr.String() + " is a multicast address"
	case g.isClusterAPIServer(addr, port):
		return addr.String() + " is the cluster's apiserver"
	case addr.IsLoopback() && !g.rules.AllowLoopback:
		return addr.String() + " is a loopback address (admitted only with --allow-loopback-endpoints, for tests)"
	}
	return ""
}

// refusedByRules names the platform team's rule that refuses addr, "" when none does.
func (g *EndpointGuard) refusedByRules(addr netip.Addr) string {
	for _, denied := range g.rules.DeniedCIDRs {
		if denied.Contains(addr) {
			return fmt.Sprintf("%s is in %s, a denied range (--denied-endpoint-cidrs)", addr, denied)
		}
	}
	if len(g.rules.AllowedCIDRs) == 0 {
		return ""
	}
	for _, allowed := range g.rules.AllowedCIDRs {
		if allowed.Contains(addr) {
			return ""
		}
	}
	return addr.String() + " is outside the allowed ranges (--allowed-endpoint-cidrs)"
}

// admitsLocalNAT64 reports whether an allowed range inside the local-use NAT64 prefix holds
// addr: ::/0 and the like do not count, for they name no NAT64 layout.
func (g *EndpointGuard) admitsLocalNAT64(addr netip.Addr) bool {
	for _, allowed := range g.rules.AllowedCIDRs {
		if allowed.Bits() >= localNAT64Prefix.Bits() && localNAT64Prefix.Contains(allowed.Addr()) && allowed.Contains(addr) {
			return true
		}
	}
	return false
}

func (g *EndpointGuard) isClusterAPIServer(addr netip.Addr, port uint16) bool {
	known := g.apiServer.Load()
	if known == nil {
		return false
	}
	for _, a := range *known {
		if a.Addr() == addr && (!addr.IsLoopback() || a.Port() == port) {
			return true
		}
	}
	return false
}

// control is a net.Dialer's ControlContext: it runs for every address the dialer tries,
// after resolution and before the connection is made.
func (g *EndpointGuard) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	target, err := netip.ParseAddrPort(address)
	if err != nil {
		return &EndpointRefusedError{Target: address, Rule: "the dialled address " + address + " is not an IP address and port"}
	}
	return g.CheckAddress(target)
}

// checkTarget applies a direct dial's checks to a call's URL: the allowed hosts, then the
// address of an IP literal or every address a name resolves to. It is for a call sent
// through a proxy, where the dialer sees only the proxy's address. A name that cannot be
// resolved is an error: unchecked, it is not sent.
func (g *EndpointGuard) checkTarget(ctx context.Context, resolver *net.Resolver, target *url.URL) error {
	host := target.Hostname()
	if err := g.CheckHost(host); err != nil {
		return err
	}
	port, err := portOf(target)
	if err != nil {
		return err
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		return g.CheckAddress(netip.AddrPortFrom(addr, port))
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolving %s to check it before using the proxy: %w", host, err)
	}
	// Every address, not just the first: the proxy may connect to any of them.
	for _, addr := range addrs {
		if err := g.CheckAddress(netip.AddrPortFrom(addr, port)); err != nil {
			return err
		}
	}
	return nil
}

// portOf is the port a call to u connects to, its scheme's default when u names none.
func portOf(u *url.URL) (uint16, error) {
	if p := u.Port(); p != "" {
		port, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return 0, &EndpointRefusedError{Target: u.Host, Rule: "the port " + p + " is not a port number"}
		}
		return uint16(port), nil
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return 443, nil
	case "http":
		return 80, nil
	}
	return 0, &EndpointRefusedError{Target: u.Host, Rule: "no port is known for the scheme " + u.Scheme}
}

// ParseCIDRs reads a comma-separated list of CIDRs or single addresses (a /32 or /128).
func ParseCIDRs(list string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if addr, err := netip.ParseAddr(item); err == nil {
			addr = addr.Unmap()
			prefixes = append(prefixes, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		prefix, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", item)
		}
		prefixes = append(prefixes, prefix.Masked())
	}
	return prefixes, nil
}
