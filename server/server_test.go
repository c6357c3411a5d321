package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/httpsd/httpsd/certs"
)

// testServer is a Server listening on loopback with a local-CA certificate
// for localhost, and a client that trusts only that CA.
type testServer struct {
	*Server
	url    string // https://localhost:PORT
	addr   string // 127.0.0.1:PORT
	client *http.Client
	done   chan error // ServeTLS's result
}

// newTestServer starts a Server for opts; extra, when not nil, replaces the
// routes behind the middleware.
func newTestServer(t *testing.T, opts Options, extra http.Handler) *testServer {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ca") // made 0700 by LocalCA, whatever the umask
	set, err := certs.LocalCA(dir, []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	opts.Hosts = []string{"localhost"}
	if opts.GetCertificate == nil {
		opts.GetCertificate = set.GetCertificate
	}
	s := New(opts)
	if extra != nil {
		s.https.Handler = s.app(extra)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, done: make(chan error, 1)}
	go func() { ts.done <- s.ServeTLS(ln) }()
	t.Cleanup(func() { s.https.Close() })

	caPEM, err := os.ReadFile(filepath.Join(dir, certs.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	addr := ln.Addr().String()
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	ts.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		DialContext:       dial,
		ForceAttemptHTTP2: true,
	}}
	ts.url = "https://localhost:" + addr[strings.LastIndexByte(addr, ':')+1:]
	ts.addr = addr
	return ts
}

func TestPanicKeepsServing(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.Handle("/", defaultRoutes())
	ts := newTestServer(t, Options{}, mux)
	for _, tt := range []struct {
		path   string
		status int
	}{{"/panic", 500}, {"/hello/world", 200}, {"/panic", 500}, {"/hello/again", 200}} {
		resp, err := ts.client.Get(ts.url + tt.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tt.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.status)
		}
	}
}

// slowHandler answers after delay and reports that it started on started.
func slowHandler(delay time.Duration, started chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		time.Sleep(delay)
		io.WriteString(w, "done")
	})
}

func TestShutdownLetsRequestsFinish(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			started := make(chan struct{}, 1)
			ts := newTestServer(t, Options{}, slowHandler(300*time.Millisecond, started))
			if proto == "HTTP/1.1" {
				ts.client.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"http/1.1"}
				ts.client.Transport.(*http.Transport).ForceAttemptHTTP2 = false
			}
			type result struct {
				resp *http.Response
				body string
				err  error
			}
			got := make(chan result, 1)
			go func() {
				resp, err := ts.client.Get(ts.url + "/slow")
				if err != nil {
					got <- result{err: err}
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				got <- result{resp, string(body), err}
			}()
			<-started
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := ts.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown = %v, want nil", err)
			}
			r := <-got
			if r.err != nil {
				t.Fatalf("GET /slow during shutdown: %v", r.err)
			}
			if r.resp.StatusCode != 200 || r.body != "done" || r.resp.Proto != proto {
				t.Errorf("GET /slow during shutdown = %d %q over %s, want 200 \"done\" over %s", r.resp.StatusCode, r.body, r.resp.Proto, proto)
			}
			if err := <-ts.done; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("ServeTLS = %v, want http.ErrServerClosed", err)
			}
			if _, err := ts.client.Get(ts.url + "/hello/x"); err == nil {
				t.Error("GET after Shutdown succeeded, want a connection error")
			}
		})
	}
}

func TestShutdownTimeoutCutsOff(t *testing.T) {
	started := make(chan struct{}, 1)
	ts := newTestServer(t, Options{}, slowHandler(3*time.Second, started))
	errc := make(chan error, 1)
	go func() {
		_, err := ts.client.Get(ts.url + "/slow")
		errc <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a request outliving it = %v, want context.DeadlineExceeded", err)
	}
	if err := <-errc; err == nil {
		t.Error("GET cut off by shutdown succeeded, want an error")
	}
}

func TestHeaderLimit(t *testing.T) {
	ts := newTestServer(t, Options{Limits: Limits{MaxHeaderBytes: 2048}}, nil)
	ts.client.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"http/1.1"}
	ts.client.Transport.(*http.Transport).ForceAttemptHTTP2 = false
	for _, tt := range []struct {
		size   int
		status int
	}{{100, 200}, {8000, 431}} {
		req, _ := http.NewRequest("GET", ts.url+"/hello/x", nil)
		req.Header.Set("X-Big", strings.Repeat("a", tt.size))
		resp, err := ts.client.Do(req)
		if err != nil {
			t.Fatalf("GET with %d-byte header: %v", tt.size, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("GET /hello/x with %d-byte header = %d, want %d", tt.size, resp.StatusCode, tt.status)
		}
	}
}

// TestShutdownClosesUnusedConns: a connection opened ahead of need (as
// browsers do) and never used does not hold a shutdown up; net/http alone
// would wait 5 seconds for it.
func TestShutdownClosesUnusedConns(t *testing.T) {
	ts := newTestServer(t, Options{}, nil)
	ts.dialH1(t)
	if !eventually(5*time.Second, func() bool { return ts.OpenConns() == 1 }) {
		t.Fatal("the connection was not accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown with an unused connection open = %v, want nil at once", err)
	}
}

// TestFreshConnAfterShutdown: a connection net/http takes from the listener
// after Shutdown began closing the silent ones is closed too, not waited
// for (here until the header timeout, a minute).
func TestFreshConnAfterShutdown(t *testing.T) {
	ts := newTestServer(t, Options{Limits: Limits{ReadHeaderTimeout: time.Minute}}, nil)
	ts.fresh.closeSilent() // as Shutdown does first, the listener still open
	c := ts.dialH1(t)
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound for the failure, never reached when it passes
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read from a connection accepted after closeSilent = %v, want EOF", err)
	}
}

// TestSessionTicketKeys: two servers given the same ticket keys resume
// each other's sessions, over TLS 1.3 and 1.2; without them they do not.
func TestSessionTicketKeys(t *testing.T) {
	for _, tt := range []struct {
		name   string
		shared bool
		max    uint16
	}{{"TLS 1.3 shared", true, tls.VersionTLS13}, {"TLS 1.2 shared", true, tls.VersionTLS12},
		{"TLS 1.3 own keys", false, tls.VersionTLS13}} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newTestServer(t, Options{}, nil), newTestServer(t, Options{}, nil)
			if tt.shared {
				keys := [][32]byte{{1}, {2}}
				a.SetSessionTicketKeys(keys)
				b.SetSessionTicketKeys(keys)
			}
			// Each has its own CA: the client skips verification, which
			// a resumed handshake does not redo anyway.
			conf := &tls.Config{ServerName: "localhost", InsecureSkipVerify: true, MaxVersion: tt.max,
				ClientSessionCache: tls.NewLRUClientSessionCache(8)}
			var resumed []bool
			for _, srv := range []*testServer{a, b} {
				c, err := tls.Dial("tcp", srv.addr, conf)
				if err != nil {
					t.Fatal(err)
				}
				// TLS 1.3 tickets come after the handshake: read a response.
				c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"))
				io.ReadAll(c)
				resumed = append(resumed, c.ConnectionState().DidResume)
				c.Close()
			}
			if resumed[0] || resumed[1] != tt.shared {
				t.Errorf("DidResume on A, then B = %v, want [false %v]", resumed, tt.shared)
			}
		})
	}
}
