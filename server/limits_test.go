package server

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpsd/httpsd/metrics"
)

// counterValue returns the value of the series name{labels} in reg, or -1.
func counterValue(t *testing.T, reg *metrics.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	if v, ok := reg.Value(name, labels); ok {
		return v
	}
	return -1
}

func TestRateLimit(t *testing.T) {
	reg := new(metrics.Registry)
	h := New(Options{Hosts: []string{"localhost"}, Metrics: reg, Limits: Limits{RatePerIP: 1, BurstPerIP: 2}}).Handler()
	get := func(path, remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "https://localhost"+path, nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i, want := range []int{200, 200, 429, 429} {
		w := get("/hello/x", "192.0.2.7:1000")
		if w.Code != want {
			t.Errorf("GET /hello/x #%d from 192.0.2.7 = %d, want %d", i+1, w.Code, want)
		}
		if want == 429 {
			if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 {
				t.Errorf("429 Retry-After = %q, want a positive number of seconds", w.Header().Get("Retry-After"))
			}
		}
	}
	for _, tt := range []struct {
		remote string
		code   int
	}{
		{"127.0.0.1:1000", 200}, // httpsd's own probe, a sidecar's
		{"192.0.2.7:1000", 429}, // anybody else's /healthz counts
	} {
		for range 3 {
			get("/healthz", tt.remote)
		}
		if w := get("/healthz", tt.remote); w.Code != tt.code {
			t.Errorf("GET /healthz from %s over the rate = %d, want %d", tt.remote, w.Code, tt.code)
		}
	}
	if w := get("/hello/x", "192.0.2.8:1000"); w.Code != 200 {
		t.Errorf("GET /hello/x from another address = %d, want 200", w.Code)
	}
	// One IPv6 client holds a /64: all of it shares a bucket.
	get("/hello/x", "[2001:db8::1]:1")
	get("/hello/x", "[2001:db8::2]:1")
	if w := get("/hello/x", "[2001:db8::ffff]:1"); w.Code != 429 {
		t.Errorf("third request from the same IPv6 /64 = %d, want 429", w.Code)
	}
	if got := counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": "429"}); got != 7 {
		t.Errorf("httpsd_rejections_total{reason=429} = %v, want 7", got)
	}
}

func TestRateLimitMemoryBounded(t *testing.T) {
	r := newIPRates(10, 10)
	now := time.Now()
	for i := range 50000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		r.allow(ip, now.Add(time.Duration(i)*time.Microsecond))
	}
	if n := r.size(); n != 50000 {
		t.Fatalf("%d buckets after 50000 addresses, want 50000", n)
	}
	// Once they have been idle long enough to be full again, they go.
	r.allow(netip.MustParseAddr("192.0.2.1"), now.Add(time.Minute))
	if n := r.size(); n != 1 {
		t.Errorf("%d buckets after a minute of idleness, want 1", n)
	}
}

func TestBodyLimit(t *testing.T) {
	h := New(Options{Hosts: []string{"localhost"}, Limits: Limits{MaxBodyBytes: 1024}}).Handler()
	for _, tt := range []struct {
		size   int
		status int
	}{{100, 405}, {1024, 405}, {1025, 413}, {1 << 20, 413}} {
		r := httptest.NewRequest("POST", "https://localhost/hello/x", bytes.NewReader(make([]byte, tt.size)))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("POST /hello/x with a %d-byte body = %d, want %d", tt.size, w.Code, tt.status)
		}
	}
}

func TestConcurrencyCap(t *testing.T) {
	reg := new(metrics.Registry)
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
	})
	mux.Handle("/", defaultRoutes())
	ts := newTestServer(t, Options{Metrics: reg, Limits: Limits{MaxConcurrent: 1, QueueTimeout: time.Second}}, mux)
	done := make(chan int, 1)
	go func() {
		resp, err := ts.client.Get(ts.url + "/slow")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-started
	start := time.Now()
	resp, err := ts.client.Get(ts.url + "/hello/queued")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if waited := time.Since(start); resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || waited < time.Second {
		t.Errorf("GET over the cap = %d Retry-After %q after %v, want 503 with Retry-After 1 after the 1s queue timeout",
			resp.StatusCode, resp.Header.Get("Retry-After"), waited)
	}
	// The only slot stays taken: a queued /healthz would get 503.
	resp, err = ts.client.Get(ts.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz at the cap = %d, want 200 without queueing", resp.StatusCode)
	}
	// A queued request gets the slot when it frees up within the timeout.
	queued := make(chan int, 1)
	go func() {
		resp, err := ts.client.Get(ts.url + "/hello/patient")
		if err != nil {
			queued <- 0
			return
		}
		resp.Body.Close()
		queued <- resp.StatusCode
	}()
	if !eventually(5*time.Second, func() bool { return counterValue(t, reg, "httpsd_http_requests_in_flight", nil) == 2 }) {
		t.Fatal("the second request did not queue")
	}
	close(release)
	if code := <-queued; code != 200 {
		t.Errorf("GET queued while a slot frees up = %d, want 200", code)
	}
	if code := <-done; code != 200 {
		t.Errorf("GET /slow = %d, want 200", code)
	}
	if got := counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": "503"}); got != 1 {
		t.Errorf("httpsd_rejections_total{reason=503} = %v, want 1", got)
	}
}

func TestConnsPerIP(t *testing.T) {
	reg := new(metrics.Registry)
	ts := newTestServer(t, Options{Metrics: reg, Limits: Limits{MaxConnsPerIP: 2}}, nil)
	dial := func() (*tls.Conn, error) {
		c, err := tls.Dial("tcp", ts.addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
		if err != nil {
			return nil, err
		}
		return c, c.Handshake()
	}
	var open []*tls.Conn
	for i := range 2 {
		c, err := dial()
		if err != nil {
			t.Fatalf("connection %d of 2: %v", i+1, err)
		}
		open = append(open, c)
	}
	if c, err := dial(); err == nil {
		c.Close()
		t.Error("third connection from one address completed its handshake, want it closed")
	}
	open[0].Close()
	if !eventually(5*time.Second, func() bool { return ts.OpenConns() == 1 }) {
		t.Fatalf("%d connections open after one of 2 closed, want 1", ts.OpenConns())
	}
	c, err := dial()
	if err != nil {
		t.Errorf("connection after one closed: %v, want it accepted", err)
	} else {
		c.Close()
	}
	open[1].Close()
	if got := counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": "conn_per_ip"}); got != 1 {
		t.Errorf("httpsd_rejections_total{reason=conn_per_ip} = %v, want 1", got)
	}
}

// TestSlowloris keeps hundreds of connections sending their headers a
// byte at a time (reconnecting when cut, as an attacker would) and checks
// that a normal client still gets fast answers and that the header timeout
// cuts every slow connection.
func TestSlowloris(t *testing.T) {
	const slow = 300
	const headerTimeout = 3 * time.Second
	ts := newTestServer(t, Options{Limits: Limits{ReadHeaderTimeout: headerTimeout}}, nil)
	// The normal client's connection is made before the attack, as a
	// browser's would be, and the same run's latency without the attack
	// is the yardstick: a loaded machine is slow with or without it.
	baseline, failed := timedGets(ts.client, ts.url+"/hello/fast", 10)
	if failed > 0 {
		t.Fatalf("%d of 10 requests failed before the attack", failed)
	}
	stop := make(chan struct{})
	// Attackers resume their TLS sessions when they reconnect: what is
	// measured is connections held open, not handshakes, whose cost under
	// the race detector would swamp a 2-core machine.
	attacker := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"http/1.1"},
		CurvePreferences: []tls.CurveID{tls.X25519}, ClientSessionCache: tls.NewLRUClientSessionCache(slow)}
	var open, peak, conns, overdue atomic.Int64
	var wg sync.WaitGroup
	for i := range slow {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 2 * time.Millisecond) // ramp up
			for {
				select {
				case <-stop:
					return
				default:
				}
				// From 10 addresses: one address may hold only 64
				// connections that have not brought a request yet.
				d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(10+i%10))}}
				c, err := tls.DialWithDialer(d, "tcp", ts.addr, attacker)
				if err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				conns.Add(1)
				if n := open.Add(1); n > peak.Load() {
					peak.Store(n)
				}
				start := time.Now()
				cut := make(chan struct{})
				go func() { io.Copy(io.Discard, c); close(cut) }()
				req := "GET /hello/slow HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + strings.Repeat("a", 100)
			dribble:
				for i := 0; i < len(req); i++ {
					if _, err := c.Write([]byte{req[i]}); err != nil {
						break
					}
					select {
					case <-cut:
						break dribble
					case <-stop:
						c.Close()
						open.Add(-1)
						return
					case <-time.After(300 * time.Millisecond):
					}
				}
				<-cut
				if time.Since(start) > headerTimeout+3*time.Second {
					overdue.Add(1)
				}
				c.Close()
				open.Add(-1)
			}
		})
	}
	if !eventually(10*time.Second, func() bool { return peak.Load() >= slow/2 }) {
		t.Fatalf("only %d slow connections open at once, want hundreds", peak.Load())
	}
	var lat []time.Duration
	for range 40 {
		start := time.Now()
		resp, err := ts.client.Get(ts.url + "/hello/fast")
		if err != nil {
			t.Fatalf("normal client during slowloris: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET /hello/fast during slowloris = %d, want 200", resp.StatusCode)
		}
		lat = append(lat, time.Since(start))
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("slowloris: %d slow connections made, up to %d open at once; normal client over %d requests: median %v, p90 %v, max %v (before the attack: median %v)",
		conns.Load(), peak.Load(), len(lat), lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1], median(baseline))
	if limit := max(250*time.Millisecond, 5*median(baseline)); lat[len(lat)/2] > limit {
		t.Errorf("normal client median latency %v during slowloris, want under %v", lat[len(lat)/2], limit)
	}
	// Without the header timeout every slow connection would outlive it;
	// on a loaded machine a few are noticed late.
	if overdue.Load() > conns.Load()/100 {
		t.Errorf("%d of %d slow connections lived longer than the header timeout (%v) plus 3s", overdue.Load(), conns.Load(), headerTimeout)
	}
}

func TestHeaderLimitHTTP2(t *testing.T) {
	reg := new(metrics.Registry)
	ts := newTestServer(t, Options{Metrics: reg, Limits: Limits{MaxHeaderBytes: 2048}}, nil)
	req, _ := http.NewRequest("GET", ts.url+"/hello/x", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 3000))
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 431 || resp.Proto != "HTTP/2.0" {
		t.Errorf("GET over HTTP/2 with a 3000-byte header = %d over %s, want 431 over HTTP/2.0", resp.StatusCode, resp.Proto)
	}
	if got := counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": "431"}); got != 1 {
		t.Errorf("httpsd_rejections_total{reason=431} = %v, want 1", got)
	}
}

func TestMetricsAfterTraffic(t *testing.T) {
	reg := new(metrics.Registry)
	ts := newTestServer(t, Options{Metrics: reg}, nil)
	for _, p := range []string{"/hello/a", "/hello/b", "/nope"} {
		resp, err := ts.client.Get(ts.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// A handshake that fails: the client offers only TLS 1.1.
	if c, err := tls.Dial("tcp", ts.addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil {
		c.Close()
	}
	eventually(5*time.Second, func() bool {
		return counterValue(t, reg, "httpsd_tls_handshake_failures_total", map[string]string{"reason": "version"}) >= 1
	})
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"httpsd_http_requests_total", map[string]string{"route": "/hello/:name", "method": "GET", "code": "200"}, 2},
		{"httpsd_http_requests_total", map[string]string{"route": "unmatched", "method": "GET", "code": "404"}, 1},
		{"httpsd_http_request_duration_seconds", map[string]string{"route": "/hello/:name"}, 2},
		{"httpsd_http_requests_in_flight", nil, 0},
		{"httpsd_tls_handshakes_total", map[string]string{"version": "TLS 1.3", "group": "X25519MLKEM768", "resumed": "false"}, 1},
		{"httpsd_tls_handshake_failures_total", map[string]string{"reason": "version"}, 1},
	}
	// A request is counted once its answer is out, which the client may
	// see first.
	for _, tt := range tests {
		if !eventually(5*time.Second, func() bool { return counterValue(t, reg, tt.name, tt.labels) == tt.want }) {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, counterValue(t, reg, tt.name, tt.labels), tt.want)
		}
	}
}

// TestReloadKeepsBuckets: a reload that leaves the rate and burst as
// they were keeps every client's bucket; one that changes them starts
// afresh.
func TestReloadKeepsBuckets(t *testing.T) {
	opts := Options{Hosts: []string{"localhost"}, Limits: Limits{RatePerIP: 0.01, BurstPerIP: 1}}
	s := New(opts)
	get := func() int {
		r := httptest.NewRequest("GET", "https://localhost/hello/x", nil)
		r.RemoteAddr = "192.0.2.1:1234"
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, r)
		return w.Code
	}
	for _, tt := range []struct {
		name   string
		update func()
		want   int
	}{
		{"first request", func() {}, 200},
		{"bucket empty", func() {}, 429},
		{"reload with the same limits", func() { s.Update(opts) }, 429},
		{"reload with other limits", func() {
			o := opts
			o.Limits.BurstPerIP = 2
			s.Update(o)
		}, 200},
	} {
		tt.update()
		if got := get(); got != tt.want {
			t.Errorf("%s: GET /hello/x = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestInFlightAfterAbort: a handler that aborts with http.ErrAbortHandler
// (as the reverse proxy does on a broken copy) leaves the in-flight gauge
// where it was, and is counted.
func TestInFlightAfterAbort(t *testing.T) {
	reg := new(metrics.Registry)
	mux := http.NewServeMux()
	mux.HandleFunc("/abort", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		panic(http.ErrAbortHandler)
	})
	ts := newTestServer(t, Options{Metrics: reg}, mux)
	for range 3 {
		if resp, err := ts.client.Get(ts.url + "/abort"); err == nil {
			resp.Body.Close()
		}
	}
	if !eventually(5*time.Second, func() bool { return counterValue(t, reg, "httpsd_http_requests_in_flight", nil) == 0 }) {
		t.Errorf("httpsd_http_requests_in_flight = %v after 3 aborted requests, want 0",
			counterValue(t, reg, "httpsd_http_requests_in_flight", nil))
	}
	if got := counterValue(t, reg, "httpsd_http_requests_total", map[string]string{"code": "200"}); got != 3 {
		t.Errorf("httpsd_http_requests_total{code=200} = %v after 3 aborted requests, want 3", got)
	}
}
