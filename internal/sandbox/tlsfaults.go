package sandbox

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// TLSFault is a failure of the server's TLS handshake. It is the whole server's, not one
// bank's: the handshake comes before the path says which bank is called.
type TLSFault int

const (
	NoTLSFault TLSFault = iota
	// TLSFaultUnknownCA presents a certificate from a CA the client was not given.
	TLSFaultUnknownCA
	// TLSFaultExpiredCertificate presents a certificate from the right CA that has expired.
	TLSFaultExpiredCertificate
)

func (f TLSFault) String() string {
	return map[TLSFault]string{NoTLSFault: "none", TLSFaultUnknownCA: "unknown CA", TLSFaultExpiredCertificate: "expired certificate"}[f]
}

// tlsFaults is the server's TLS fault state. Server.mu guards it.
type tlsFaults struct {
	serving    tls.Certificate
	current    TLSFault
	faulty     map[TLSFault]tls.Certificate
	handshakes int
	conns      map[net.Conn]bool
}

// SetTLSFault makes every new handshake fail as fault says (NoTLSFault: succeed again), and
// closes open connections, so that a client's next call handshakes anew.
func (s *Server) SetTLSFault(fault TLSFault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, made := s.tls.faulty[fault]; !made && fault != NoTLSFault {
		cert, err := s.faultyCertificate(fault)
		if err != nil {
			return err
		}
		s.tls.faulty[fault] = cert
	}
	s.tls.current, s.tls.handshakes = fault, 0
	for conn := range s.tls.conns {
		_ = conn.Close()
	}
	return nil
}

// TLSFaultHandshakes counts the handshakes that met the current TLS fault: the calls a
// client tried while it was on.
func (s *Server) TLSFaultHandshakes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tls.handshakes
}

func (s *Server) faultyCertificate(fault TLSFault) (tls.Certificate, error) {
	realNow := time.Now()
	leaf := Leaf{CommonName: "sandbox-bank", Hosts: []string{"127.0.0.1", "::1", "localhost"},
		NotBefore: realNow.Add(-time.Hour), NotAfter: realNow.Add(time.Hour)}
	issuer := s.ca
	if fault == TLSFaultExpiredCertificate {
		leaf.NotBefore, leaf.NotAfter = realNow.Add(-48*time.Hour), realNow.Add(-24*time.Hour)
	} else {
		var err error
		if issuer, err = NewCertificateAuthority("some other CA", realNow); err != nil {
			return tls.Certificate{}, err
		}
	}
	return issuer.IssueTLS(leaf)
}

// certificate is the server's GetCertificate: the serving certificate, or the fault's.
func (s *Server) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tls.current == NoTLSFault {
		return &s.tls.serving, nil
	}
	s.tls.handshakes++
	cert := s.tls.faulty[s.tls.current]
	return &cert, nil
}

// trackConnection keeps the open connections, for SetTLSFault to close.
func (s *Server) trackConnection(conn net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case http.StateNew:
		s.tls.conns[conn] = true
	case http.StateClosed, http.StateHijacked:
		delete(s.tls.conns, conn)
	}
}
