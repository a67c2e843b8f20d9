package providers_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/banktoken/bank-token-operator/internal/providers"
)

// fakeDNS answers A queries from a table that a test may change between calls, as a
// rebinding attacker's name server does. It speaks real DNS messages to Go's own resolver
// over an in-memory connection: no /etc/hosts, no network.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string]netip.Addr
}

func (d *fakeDNS) set(name, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.answers[name+"."] = netip.MustParseAddr(addr)
}

func (d *fakeDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go d.serveOne(server)
		return client, nil
	}}
}

// serveOne answers one query: an A record when the table holds the name, otherwise an
// empty answer (the name exists, without that record type). A net.Pipe is no PacketConn,
// so Go's resolver frames messages as over TCP: a two-byte length first.
func (d *fakeDNS) serveOne(conn net.Conn) {
	defer conn.Close()
	var length [2]byte
	if _, err := io.ReadFull(conn, length[:]); err != nil {
		return
	}
	buf := make([]byte, binary.BigEndian.Uint16(length[:]))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return
	}
	var query dnsmessage.Message
	if query.Unpack(buf) != nil || len(query.Questions) != 1 {
		return
	}
	q := query.Questions[0]
	answer := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: query.ID, Response: true, Authoritative: true, RecursionDesired: true, RecursionAvailable: true},
		Questions: query.Questions,
	}
	d.mu.Lock()
	addr, ok := d.answers[q.Name.String()]
	d.mu.Unlock()
	if ok && q.Type == dnsmessage.TypeA && addr.Is4() {
		answer.Answers = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 0},
			Body:   &dnsmessage.AResource{A: addr.As4()},
		}}
	}
	packed, err := answer.Pack()
	if err == nil {
		_, _ = conn.Write(binary.BigEndian.AppendUint16(nil, uint16(len(packed))))
		_, _ = conn.Write(packed)
	}
}

// countingBank answers every call with a token and counts the calls.
func countingBank(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"access_token":"dial-test-access","token_type":"Bearer","expires_in":600}`)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func requestTo(endpoint string) providers.Request {
	return providers.Request{Provider: providers.OAuth2, TokenEndpoint: endpoint, GrantType: providers.GrantClientCredentials,
		Credentials: providers.Credentials{ClientID: "dial-test-client", ClientSecret: "dial-test-secret"}, AllowInsecureHTTP: true}
}

// expectEndpointRefused checks that a call failed as refused, naming the rule, and that
// it counts as never sent (a refresh token in it is not spent).
func expectEndpointRefused(t *testing.T, err error, rule string) {
	t.Helper()
	var perr *providers.Error
	if !errors.As(err, &perr) {
		t.Fatalf("got %v, want a refused endpoint", err)
	}
	if perr.Reason != providers.ReasonEndpointRefused || perr.Class != providers.ClassConfiguration || !perr.NotSent {
		t.Fatalf("got %s/%s (not sent: %v): %s; want EndpointRefused, Configuration, not sent", perr.Class, perr.Reason, perr.NotSent, perr.Message)
	}
	if !strings.Contains(perr.Message, rule) || strings.Contains(perr.Message, "dial tcp") {
		t.Fatalf("message %q does not name the rule %q in its own words", perr.Message, rule)
	}
}

func TestANameThatResolvesToARefusedAddressIsRefusedAtDialTime(t *testing.T) {
	dns := &fakeDNS{answers: map[string]netip.Addr{}}
	dns.set("metadata.bank.test", "169.254.169.254")
	dns.set("linklocal.bank.test", "169.254.7.7")
	client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard(), Resolver: dns.resolver()})
	_, err := client.Fetch(context.Background(), requestTo("http://metadata.bank.test/token"))
	expectEndpointRefused(t, err, "169.254.169.254 is a cloud metadata address")
	_, err = client.Fetch(context.Background(), requestTo("http://linklocal.bank.test:8080/token"))
	expectEndpointRefused(t, err, "169.254.7.7 is a link-local address")
}

// DNS rebinding: the name first resolves to an admitted address, then to a refused one.
// Each new connection is checked, so the second call never leaves the operator.
func TestARebindingNameIsCheckedOnEveryConnection(t *testing.T) {
	srv, calls := countingBank(t)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	dns := &fakeDNS{answers: map[string]netip.Addr{}}
	dns.set("rebind.bank.test", "127.0.0.1")
	client := providers.NewClient(providers.ClientOptions{Guard: loopbackGuard(), Resolver: dns.resolver()})
	endpoint := "http://rebind.bank.test:" + strconv.Itoa(port) + "/token"
	if _, err := client.Fetch(context.Background(), requestTo(endpoint)); err != nil {
		t.Fatalf("the first call, to loopback (admitted here), failed: %v", err)
	}
	dns.set("rebind.bank.test", "0.0.0.0") // 0.0.0.0 reaches the local host on Linux
	client.CloseIdleConnections()
	_, err := client.Fetch(context.Background(), requestTo(endpoint))
	expectEndpointRefused(t, err, "0.0.0.0 is the unspecified address")
	if got := calls.Load(); got != 1 {
		t.Fatalf("the bank saw %d calls; the rebound call must not reach it", got)
	}
}

func TestTheDefaultGuardRefusesLoopbackAndCallsNoBank(t *testing.T) {
	srv, calls := countingBank(t)
	_, err := providers.NewClient(providers.ClientOptions{}).Fetch(context.Background(), requestTo(srv.URL+"/token"))
	expectEndpointRefused(t, err, "is a loopback address (admitted only with --allow-loopback-endpoints")
	if calls.Load() != 0 {
		t.Fatal("a refused endpoint was called")
	}
}

func TestAHostOutsideTheAllowedHostsIsRefusedBeforeAnyLookup(t *testing.T) {
	srv, calls := countingBank(t)
	dns := &fakeDNS{answers: map[string]netip.Addr{}}
	dns.set("token.elsewhere.test", "127.0.0.1")
	guard := newGuard(t, providers.EndpointRules{AllowLoopback: true, AllowedHosts: []string{"*.bank.test"}})
	client := providers.NewClient(providers.ClientOptions{Guard: guard, Resolver: dns.resolver()})
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	_, err := client.Fetch(context.Background(), requestTo("http://token.elsewhere.test:"+port+"/token"))
	expectEndpointRefused(t, err, "host token.elsewhere.test matches none of the allowed endpoint hosts")
	dns.set("token.bank.test", "127.0.0.1")
	if _, err := client.Fetch(context.Background(), requestTo("http://token.bank.test:"+port+"/token")); err != nil {
		t.Fatalf("an allowed host failed: %v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("the bank saw %d calls, want only the allowed host's", calls.Load())
	}
}
