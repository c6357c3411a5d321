package server

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/pires/go-proxyproto"
)

// probe is how the server checks that it answers HTTPS: a request to
// /healthz through its own listener, over TLS with a certificate made for
// this purpose at start, so that the check works whatever the certificate
// source holds (an ACME certificate not issued yet, files for other names).
type probe struct {
	name string // the SNI that selects cert, random per process
	cert *tls.Certificate
	pool *x509.CertPool
}

func newProbe() *probe {
	var b [8]byte
	rand.Read(b[:])
	p := &probe{name: "probe-" + hex.EncodeToString(b[:]) + ".httpsd.invalid", pool: x509.NewCertPool()}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("server: probe key: " + err.Error()) // crypto/rand does not fail
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{p.name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(100 * 365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic("server: probe certificate: " + err.Error())
	}
	leaf, _ := x509.ParseCertificate(der)
	p.cert = &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	p.pool.AddCert(leaf)
	return p
}

// getCertificate wraps get to answer the probe's handshakes.
func (p *probe) getCertificate(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.ServerName == p.name {
			return p.cert, nil
		}
		if get == nil {
			return nil, errors.New("server: no certificate source")
		}
		return get(hello)
	}
}

// Probe asks the HTTPS listener for /healthz as a client would, on
// loopback, and returns why it did not answer 200 within ctx, or nil. It
// fails before ServeTLS has started.
func (s *Server) Probe(ctx context.Context) error {
	ap := s.httpsAddr.Load()
	if ap == nil {
		return errors.New("https listener not serving")
	}
	addr := loopback(*ap)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("https %s: %w", addr, err)
	}
	defer raw.Close()
	if s.needsProxyHeader(raw.LocalAddr()) { // the probe comes from a listed balancer's address
		hdr := &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
		if _, err := hdr.WriteTo(raw); err != nil {
			return fmt.Errorf("https %s: %w", addr, err)
		}
	}
	c := tls.Client(raw, &tls.Config{ServerName: s.probe.name, RootCAs: s.probe.pool, NextProtos: []string{"http/1.1"}})
	if err := c.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("https %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: " + s.probe.name + "\r\nConnection: close\r\n\r\n")); err != nil {
		return fmt.Errorf("https %s: %w", addr, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("https %s: %w", addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("https %s: GET /healthz = %s", addr, resp.Status)
	}
	return nil
}

// loopback returns addr with an unspecified host replaced by loopback.
func loopback(addr net.Addr) string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	ip := ta.IP
	switch {
	case ip == nil || ip.Equal(net.IPv4zero):
		ip = net.IPv4(127, 0, 0, 1)
	case ip.Equal(net.IPv6unspecified):
		ip = net.IPv6loopback
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(ta.Port))
}

// needsProxyHeader reports whether a connection from local must send a
// PROXY protocol header.
func (s *Server) needsProxyHeader(local net.Addr) bool {
	ip := clientAddr(local.String())
	for _, p := range s.proxyFrom {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
