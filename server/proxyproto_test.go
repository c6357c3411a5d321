package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/httpsd/httpsd/metrics"
	"github.com/pires/go-proxyproto"
)

// TestProxyProtocol: a listed balancer's connections name their client in a
// PROXY protocol header (v1 or v2), and that client is who the server sees;
// a listed peer without a header, or another peer with one, is cut.
func TestProxyProtocol(t *testing.T) {
	reg := new(metrics.Registry)
	var logs syncBuffer
	ts := newTestServer(t, Options{Metrics: reg, AccessLog: true, AccessLogWriter: &logs,
		ProxyProtocolFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.5/32")},
		Limits:            Limits{RatePerIP: 0.01, BurstPerIP: 1}}, nil)
	get := func(from string, header *proxyproto.Header) (int, error) {
		d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		raw, err := d.Dial("tcp", ts.addr)
		if err != nil {
			return 0, err
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		if header != nil {
			if _, err := header.WriteTo(raw); err != nil {
				return 0, err
			}
		}
		c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		if _, err := io.WriteString(c, "GET /hello/p HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			return 0, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	client := func(ip string, port uint16, version byte) *proxyproto.Header {
		h := proxyproto.HeaderProxyFromAddrs(version, &net.TCPAddr{IP: net.ParseIP(ip), Port: int(port)}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443})
		return h
	}
	for _, tt := range []struct {
		name   string
		from   string
		header *proxyproto.Header
		status int // 0: the connection is cut
	}{
		{"balancer, v1 header", "127.0.0.5", client("203.0.113.7", 4711, 1), 200},
		{"balancer, v2 header, another client", "127.0.0.5", client("198.51.100.9", 4712, 2), 200},
		{"balancer, the first client again: its own rate limit", "127.0.0.5", client("203.0.113.7", 4713, 2), 429},
		{"balancer without a header", "127.0.0.5", nil, 0},
		{"another peer with a header", "127.0.0.6", client("203.0.113.8", 1, 2), 0},
		{"another peer without one", "127.0.0.6", nil, 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, err := get(tt.from, tt.header)
			if status != tt.status {
				t.Errorf("GET /hello/p from %s = %d (%v), want %d", tt.from, status, err, tt.status)
			}
		})
	}
	if got := counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": "proxy_protocol"}); got != 2 {
		t.Errorf("httpsd_rejections_total{reason=proxy_protocol} = %v, want 2", got)
	}
	if !eventually(5*time.Second, func() bool {
		return strings.Contains(logs.String(), "remote=203.0.113.7:4711") && strings.Contains(logs.String(), "remote=198.51.100.9:4712")
	}) {
		t.Errorf("access log does not name the clients the headers gave:\n%s", logs.String())
	}
	// The health probe sends a header when it comes from a listed address.
	ts2 := newTestServer(t, Options{ProxyProtocolFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, nil)
	var err error
	if !eventually(5*time.Second, func() bool { err = ts2.Probe(t.Context()); return err == nil }) {
		t.Errorf("Probe with loopback listed as a balancer = %v, want nil", err)
	}
}
