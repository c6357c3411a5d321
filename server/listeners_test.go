package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/httpsd/httpsd/metrics"
	"github.com/pires/go-proxyproto"
)

// TestUnixListener: connections on a unix socket have no client address;
// the per-address caps do not apply to them, and none of them is left
// counted: more connections than one address may hold, one after the
// other, are all answered.
func TestUnixListener(t *testing.T) {
	reg := new(metrics.Registry)
	ts := newTestServer(t, Options{Metrics: reg, Limits: Limits{MaxConnsPerIP: 4}}, nil)
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go ts.Server.ServeTLS(ln)
	answered := 0
	for range freshPerIP + 6 {
		c, err := tls.Dial("unix", sock, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		if err != nil {
			continue
		}
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(c)
		c.Close()
		if strings.HasPrefix(string(b), "HTTP/1.1 200") {
			answered++
		}
	}
	if answered != freshPerIP+6 {
		t.Errorf("%d of %d connections over a unix socket answered, want all", answered, freshPerIP+6)
	}
	if got, _ := reg.Value("httpsd_rejections_total", map[string]string{"reason": "conn_per_ip"}); got != 0 {
		t.Errorf("httpsd_rejections_total{reason=conn_per_ip} = %v, want 0", got)
	}
}

// TestIPv6Loopback: ::1 is loopback for what tests the address itself (a
// balancer listed in ProxyProtocolFrom, the connection reserve for the
// health probe), though limits count IPv6 clients by /64.
func TestIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	reg := new(metrics.Registry)
	ts := newTestServer(t, Options{Metrics: reg, ProxyProtocolFrom: []netip.Prefix{netip.MustParsePrefix("::1/128")}}, nil)
	go ts.Server.ServeTLS(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	h := proxyproto.HeaderProxyFromAddrs(2, &net.TCPAddr{IP: net.ParseIP("2001:db8::9"), Port: 1234}, c.RemoteAddr())
	if _, err := h.WriteTo(c); err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(tc, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	b, err := io.ReadAll(tc)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200") {
		t.Errorf("GET /healthz through a balancer on ::1 listed as ::1/128 = %.30q, %v; want 200", b, err)
	}
	for _, tt := range []struct {
		addr  string
		local bool
	}{{"[::1]:5000", true}, {"127.0.0.1:5000", true}, {"[::ffff:127.0.0.1]:5000", true}, {"127.0.0.2:5000", false}, {"[2001:db8::1]:5000", false}} {
		ap := netip.MustParseAddrPort(tt.addr)
		if got := local(fakeConn{remote: net.TCPAddrFromAddrPort(ap)}); got != tt.local {
			t.Errorf("local(%s) = %v, want %v", tt.addr, got, tt.local)
		}
	}
}

type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.remote }

// TestWrapRedirectAnswers: what a WrapRedirect handler answers by itself
// (autocert's http-01 challenges) is a handler's answer, not one net/http
// made on its own: it is not counted as a rejection.
func TestWrapRedirectAnswers(t *testing.T) {
	reg := new(metrics.Registry)
	s := New(Options{Hosts: []string{"localhost"}, Metrics: reg,
		WrapRedirect: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
					io.WriteString(w, "token.thumbprint")
					return
				}
				next.ServeHTTP(w, r)
			})
		}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeRedirect(ln)
	t.Cleanup(func() { s.http.Close() })
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct {
		path   string
		status int
	}{{"/.well-known/acme-challenge/abc", 200}, {"/x", 308}} {
		resp, err := client.Get(fmt.Sprintf("http://localhost:%d%s", ln.Addr().(*net.TCPAddr).Port, tt.path))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.status)
		}
	}
	var sb strings.Builder
	reg.WriteTo(&sb)
	if strings.Contains(sb.String(), `httpsd_rejections_total{reason="200"}`) {
		t.Errorf("the challenge answer was counted as a rejection: %s", sb.String())
	}
}
