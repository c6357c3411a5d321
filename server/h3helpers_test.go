package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3TestServer is a testServer also serving HTTP/3 on the UDP port of its
// HTTPS address.
type h3TestServer struct {
	*testServer
	udp    string     // 127.0.0.1:PORT, the same port
	h3done chan error // ServeQUIC's result
	logs   *syncBuffer
}

// newH3TestServer starts a Server for opts over TCP and QUIC, with its
// access log in logs; opts.Handler, when set, answers behind the checks.
func newH3TestServer(t *testing.T, opts Options) *h3TestServer {
	t.Helper()
	logs := &syncBuffer{}
	if opts.AccessLogWriter == nil {
		opts.AccessLogWriter, opts.AccessLog = logs, true
	}
	for try := 0; ; try++ {
		ts := newTestServer(t, opts, nil)
		pc, err := net.ListenPacket("udp", ts.addr)
		if err != nil { // the TCP port's UDP twin is taken: another port
			if try == 5 {
				t.Fatal(err)
			}
			ts.https.Close()
			continue
		}
		hs := &h3TestServer{testServer: ts, udp: ts.addr, h3done: make(chan error, 1), logs: logs}
		go func() { hs.h3done <- ts.ServeQUIC(pc) }()
		t.Cleanup(func() {
			ts.closeQUIC()
			pc.Close()
		})
		return hs
	}
}

// h3Client returns an HTTP/3 client trusting the server's CA that sends
// every request to the server's UDP address, from the loopback address
// from ("" for 127.0.0.1), with its own connections.
func (hs *h3TestServer) h3Client(t *testing.T, from string) (*http.Client, *http3.Transport) {
	t.Helper()
	tr := &http3.Transport{
		TLSClientConfig: hs.clientTLS(),
		QUICConfig:      &quic.Config{HandshakeIdleTimeout: 10 * time.Second},
		Dial: func(ctx context.Context, _ string, tlsConf *tls.Config, conf *quic.Config) (*quic.Conn, error) {
			return hs.dialQUIC(ctx, from, tlsConf, conf)
		},
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}, tr
}

// clientTLS is a TLS config trusting the server's CA, for localhost.
func (hs *h3TestServer) clientTLS() *tls.Config {
	roots := hs.client.Transport.(*http.Transport).TLSClientConfig.RootCAs
	return &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{http3.NextProtoH3}}
}

// dialQUIC opens a QUIC connection (0-RTT when it can) to the server from
// the loopback address from, on a UDP socket of its own.
func (hs *h3TestServer) dialQUIC(ctx context.Context, from string, tlsConf *tls.Config, conf *quic.Config) (*quic.Conn, error) {
	if from == "" {
		from = "127.0.0.1"
	}
	pc, err := net.ListenPacket("udp", from+":0")
	if err != nil {
		return nil, err
	}
	addr, _ := net.ResolveUDPAddr("udp", hs.udp)
	tr := &quic.Transport{Conn: pc}
	c, err := tr.DialEarly(ctx, addr, tlsConf, conf)
	if err != nil {
		tr.Close()
		pc.Close()
		return nil, err
	}
	context.AfterFunc(c.Context(), func() {
		tr.Close()
		pc.Close()
	})
	return c, nil
}

// logLine returns the first access log line that contains all of parts,
// or "".
func (hs *h3TestServer) logLine(parts ...string) string {
	for _, line := range strings.Split(hs.logs.String(), "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok && line != "" {
			return line
		}
	}
	return ""
}
