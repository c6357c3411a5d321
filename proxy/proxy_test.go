package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpsd/httpsd/metrics"
)

// backend is an upstream for tests: it answers with its name and counts
// its requests; block holds requests until it is closed.
type backend struct {
	name  string
	addr  string // http://127.0.0.1:PORT or unix:/path
	hits  atomic.Int64
	block chan struct{}
	srv   *httptest.Server
	last  atomic.Pointer[http.Request]
}

func newBackend(t *testing.T, name string, unix bool) *backend {
	t.Helper()
	b := &backend{name: name}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.last.Store(r)
		if b.block != nil && r.URL.Path == "/block" {
			<-b.block
		}
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "must not reach the client")
		fmt.Fprintf(w, "%s %s", name, r.URL.RequestURI())
	}))
	if unix {
		sock := filepath.Join(t.TempDir(), "b.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		b.srv.Listener = ln
		b.addr = "unix:" + sock
	}
	b.srv.Start()
	if !unix {
		b.addr = b.srv.URL
	}
	t.Cleanup(b.srv.Close)
	return b
}

func newProxy(t *testing.T, o Options) *Proxy {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// do sends one request through p and returns the response with its body.
func do(p http.Handler, method, target string, body io.Reader, header http.Header) (*http.Response, string) {
	r := httptest.NewRequest(method, "https://app.example"+target, body)
	r.RemoteAddr = "192.0.2.7:5000"
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	resp := w.Result()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestBalancing(t *testing.T) {
	for _, tt := range []struct {
		lb   string
		want [2]int64 // requests to each of 2 upstreams out of 10
	}{
		{"round_robin", [2]int64{5, 5}},
		{"least_conn", [2]int64{1, 9}}, // one request held on the first
	} {
		t.Run(tt.lb, func(t *testing.T) {
			a, b := newBackend(t, "a", false), newBackend(t, "b", true)
			a.block = make(chan struct{})
			p := newProxy(t, Options{Upstreams: []string{a.addr, b.addr}, LB: tt.lb})
			var wg sync.WaitGroup
			if tt.lb == "least_conn" {
				wg.Go(func() { do(p, "GET", "/block", nil, nil) })
				for a.hits.Load() == 0 {
					time.Sleep(time.Millisecond)
				}
				for range 9 {
					do(p, "GET", "/x", nil, nil)
				}
			} else {
				for range 10 {
					do(p, "GET", "/x", nil, nil)
				}
			}
			close(a.block)
			wg.Wait()
			if got := [2]int64{a.hits.Load(), b.hits.Load()}; got != tt.want {
				t.Errorf("lb %s: requests per upstream = %v, want %v", tt.lb, got, tt.want)
			}
		})
	}
}

// TestRetry: a request that could not connect goes to another upstream
// only when it is idempotent and has no body; the upstream that refused is
// skipped for FailTimeout.
func TestRetry(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	live := newBackend(t, "live", false)
	reg := new(metrics.Registry)
	for _, tt := range []struct {
		method string
		body   string
		status int
	}{
		{"GET", "", 200},
		{"HEAD", "", 200},
		{"DELETE", "", 200},
		{"POST", "", 502},
		{"PUT", "a body", 502},
	} {
		t.Run(tt.method+" "+tt.body, func(t *testing.T) {
			// dead first: round robin starts there.
			p := newProxy(t, Options{Upstreams: []string{dead, live.addr}, Metrics: NewMetrics(new(metrics.Registry))})
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			resp, got := do(p, tt.method, "/r", body, nil)
			if resp.StatusCode != tt.status {
				t.Errorf("%s through a dead and a live upstream = %d %q, want %d", tt.method, resp.StatusCode, got, tt.status)
			}
			if tt.status == 502 && (strings.Contains(got, "127.0.0.1") || got != "502 bad gateway\n") {
				t.Errorf("502 body = %q, want a short body naming nothing internal", got)
			}
			// The dead one is skipped from now on: this one goes to live.
			if resp, _ := do(p, "POST", "/r", nil, nil); resp.StatusCode != 200 {
				t.Errorf("POST after the dead upstream was marked down = %d, want 200", resp.StatusCode)
			}
		})
	}
	p := newProxy(t, Options{Upstreams: []string{dead}, Metrics: NewMetrics(reg)})
	do(p, "GET", "/", nil, nil)
	if v, _ := reg.Value("httpsd_upstream_errors_total", map[string]string{"upstream": dead, "kind": "connect"}); v != 1 {
		t.Errorf("httpsd_upstream_errors_total{kind=connect} = %v, want 1", v)
	}
	if resp, _ := do(p, "GET", "/", nil, nil); resp.StatusCode != 502 {
		t.Errorf("GET with every upstream down = %d, want 502", resp.StatusCode)
	}
}

func TestHeaders(t *testing.T) {
	b := newBackend(t, "b", false)
	for _, tt := range []struct {
		name    string
		opts    Options
		in      http.Header
		wantXFF string
		wantFwd string
		host    string
	}{
		{"untrusted", Options{}, http.Header{"X-Forwarded-For": {"1.2.3.4"}, "Forwarded": {"for=1.2.3.4"}}, "192.0.2.7", "", "app.example"},
		{"trusted", Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}},
			http.Header{"X-Forwarded-For": {"1.2.3.4"}, "Forwarded": {"for=1.2.3.4"}}, "1.2.3.4, 192.0.2.7", "for=1.2.3.4", "app.example"},
		{"host_header", Options{HostHeader: "internal.app"}, nil, "192.0.2.7", "", "internal.app"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Upstreams = []string{b.addr}
			p := newProxy(t, tt.opts)
			in := http.Header{"Connection": {"X-Secret"}, "X-Secret": {"hop"}, "Keep-Alive": {"timeout=5"}}
			for k, v := range tt.in {
				in[k] = v
			}
			resp, body := do(p, "GET", "/h?q=%2F&r", nil, in)
			r := b.last.Load()
			if body != "b /h?q=%2F&r" {
				t.Errorf("upstream got %q, want the path and raw query as sent", body)
			}
			for h, want := range map[string]string{"X-Forwarded-For": tt.wantXFF, "Forwarded": tt.wantFwd,
				"X-Forwarded-Proto": "https", "X-Secret": "", "Keep-Alive": ""} {
				if got := r.Header.Get(h); got != want {
					t.Errorf("upstream got %s %q, want %q", h, got, want)
				}
			}
			if r.Host != tt.host {
				t.Errorf("upstream got Host %q, want %q", r.Host, tt.host)
			}
			if resp.Header.Get("X-Hop") != "" {
				t.Errorf("client got the upstream's hop-by-hop X-Hop header")
			}
		})
	}
}

// ExampleNew puts a proxy in front of an app on a unix socket.
func ExampleNew() {
	ln, _ := net.Listen("unix", filepath.Join(must(mkdirTemp()), "app.sock"))
	app := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app: %s for %s", r.URL.Path, r.Header.Get("X-Forwarded-For"))
	})}
	go app.Serve(ln)
	defer app.Close()

	p, err := New(Options{Upstreams: []string{"unix:" + ln.Addr().String()}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	r := httptest.NewRequest("GET", "https://example.com/hello", nil)
	r.RemoteAddr = "203.0.113.9:4711"
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body.String())
	// Output: 200 app: /hello for 203.0.113.9
}

func mkdirTemp() (string, error) { return os.MkdirTemp("", "proxy") }

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}
