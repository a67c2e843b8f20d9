package controller

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// apiServerAddresses reads where the cluster's own apiserver answers: the default/kubernetes
// Service's ClusterIPs, the addresses of its EndpointSlice (the apiservers themselves) and
// the address this manager talks to. It hands them to the endpoint guard at start and every
// interval after, so that no tenant's endpoint can make the operator call its own apiserver
// with a CA bundle the tenant chose (the namespace's kube-root-ca.crt makes it trusted).
//
// A periodic read, not a watch: the addresses change with control-plane maintenance, a
// minute late is soon enough, and a watch of one object needs list and watch rights beyond
// the two named gets.
type apiServerAddresses struct {
	reader client.Reader
	guard  APIServerGuard
	// ownHost is the host:port of the manager's own rest config.
	ownHost  string
	interval time.Duration
	// lastProblem is the last read failure logged, so that a failure repeated every
	// interval (forbidden, in namespaced mode) is logged once.
	lastProblem string
}

// APIServerGuard is what learns the apiserver's addresses: *providers.EndpointGuard.
type APIServerGuard interface {
	SetClusterAPIServer([]netip.AddrPort)
}

// apiServerService is the Service (and EndpointSlice) every cluster has for its apiserver.
var apiServerService = types.NamespacedName{Namespace: "default", Name: "kubernetes"}

// apiServerAddressesInterval is how often the apiserver's addresses are read again.
const apiServerAddressesInterval = time.Minute

// GuardAPIServerAddresses tells guard the apiserver's addresses now, and keeps them current
// while the manager runs (on every replica: a standby's guard is ready when it leads).
func GuardAPIServerAddresses(ctx context.Context, mgr ctrl.Manager, guard APIServerGuard) error {
	a := &apiServerAddresses{reader: mgr.GetAPIReader(), guard: guard, interval: apiServerAddressesInterval}
	host := mgr.GetConfig().Host
	if !strings.Contains(host, "://") {
		host = "https://" + host // client-go accepts a bare host:port
	}
	if u, err := url.Parse(host); err == nil {
		a.ownHost = hostWithPort(u)
	}
	a.refresh(ctx)
	return mgr.Add(a)
}

// Start refreshes the addresses every interval until ctx ends; a manager Runnable.
func (a *apiServerAddresses) Start(ctx context.Context) error {
	ticker := time.NewTicker(a.interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			a.refresh(ctx)
		}
	}
}

// NeedLeaderElection is false: every replica's guard must know the apiserver.
func (a *apiServerAddresses) NeedLeaderElection() bool { return false }

// refresh reads the addresses and hands the guard all it found. What cannot be read is
// logged; the guard still learns the rest, the manager's own apiserver address at least.
func (a *apiServerAddresses) refresh(ctx context.Context) {
	addrs := a.ownAddresses(ctx)
	fromService, err := a.serviceAddresses(ctx)
	addrs = append(addrs, fromService...)
	a.guard.SetClusterAPIServer(addrs)
	problem := ""
	if err != nil {
		problem = err.Error()
	}
	if problem != a.lastProblem {
		log := logf.FromContext(ctx).WithName("apiserver-addresses")
		if problem != "" {
			log.Error(err, "cannot read the apiserver's Service or EndpointSlice; endpoints are guarded against the addresses known",
				"known", len(addrs))
		} else {
			log.Info("reading the apiserver's addresses works again", "known", len(addrs))
		}
		a.lastProblem = problem
	}
}

// serviceAddresses reads the kubernetes Service's ClusterIPs and its EndpointSlice's
// addresses. A missing object adds nothing and is no error.
func (a *apiServerAddresses) serviceAddresses(ctx context.Context) ([]netip.AddrPort, error) {
	var addrs []netip.AddrPort
	svc := &corev1.Service{}
	if err := a.reader.Get(ctx, apiServerService, svc); client.IgnoreNotFound(err) != nil {
		return nil, err
	}
	clusterIPs := svc.Spec.ClusterIPs
	if len(clusterIPs) == 0 { // written before dual-stack, by an older apiserver
		clusterIPs = []string{svc.Spec.ClusterIP}
	}
	for _, ip := range clusterIPs {
		for _, port := range svc.Spec.Ports {
			addrs = appendAddrPort(addrs, ip, int(port.Port))
		}
	}
	slice := &discoveryv1.EndpointSlice{}
	if err := a.reader.Get(ctx, apiServerService, slice); err != nil {
		if apierrors.IsNotFound(err) {
			return addrs, nil
		}
		return addrs, err
	}
	for _, endpoint := range slice.Endpoints {
		for _, ip := range endpoint.Addresses {
			for _, port := range slice.Ports {
				if port.Port != nil {
					addrs = appendAddrPort(addrs, ip, int(*port.Port))
				}
			}
		}
	}
	return addrs, nil
}

// ownAddresses are the addresses of the apiserver this manager itself talks to.
func (a *apiServerAddresses) ownAddresses(ctx context.Context) []netip.AddrPort {
	host, portText, err := net.SplitHostPort(a.ownHost)
	if err != nil {
		return nil
	}
	port, _ := strconv.Atoi(portText)
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), uint16(port))}
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	var addrs []netip.AddrPort
	for _, ip := range ips {
		addrs = append(addrs, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
	}
	return addrs
}

func appendAddrPort(addrs []netip.AddrPort, ip string, port int) []netip.AddrPort {
	addr, err := netip.ParseAddr(ip)
	if err != nil || port <= 0 || port > 65535 {
		return addrs
	}
	return append(addrs, netip.AddrPortFrom(addr.Unmap(), uint16(port)))
}

// hostWithPort is the URL's host:port, with the scheme's default port when none is given.
func hostWithPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "http" {
		return net.JoinHostPort(u.Hostname(), "80")
	}
	return net.JoinHostPort(u.Hostname(), "443")
}
