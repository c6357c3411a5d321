package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// proxySetup is httpsd with routes, in-process, and a client for it.
type proxySetup struct {
	r       *running
	dataDir string
	cfg     string
	client  *http.Client // trusts the local CA; connects to the HTTPS port
}

// startProxy runs httpsd with the config text (YAML, without listen, log
// and data_dir, which it adds) and returns it serving.
func startProxy(t *testing.T, config string) *proxySetup {
	t.Helper()
	vars, dataDir := dataDirEnv(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	base := "listen: {https: 127.0.0.1:0, http: 127.0.0.1:0, admin: 127.0.0.1:0}\nlog: {level: debug, format: json}\n"
	if err := os.WriteFile(cfg, []byte(base+config), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRun(t, vars, "-config", cfg)
	return &proxySetup{r: r, dataDir: dataDir, cfg: cfg, client: clientFor(caPool(t, filepath.Join(dataDir, "ca.crt")), r.https)}
}

// get GETs https://localhost/path through httpsd.
func (p *proxySetup) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := p.client.Get("https://localhost" + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// metric returns the value of a series line in /metrics, or -1.
func (p *proxySetup) metric(t *testing.T, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(scrape(t, p.r.admin), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}

// TestProxyBottle puts the Bottle app under gunicorn behind httpsd, on TCP
// and on a unix socket, beside httpsd's own /hello/:name for another
// path, and checks with curl over HTTP/1.1 and HTTP/2 that clients get the
// app's bytes.
func TestProxyBottle(t *testing.T) {
	testDeps(t, "curl")
	tcp, unix := startBottle(t, "tcp"), startBottle(t, "unix")
	p := startProxy(t, fmt.Sprintf(`hosts: [localhost, unix.localhost]
routes:
  - {path: /builtin/:name, hello: {}}
  - {host: localhost, path: /*, proxy: {upstreams: ["%s"]}}
  - {host: unix.localhost, path: /*, proxy: {upstreams: ["%s"]}}
`, tcp.upstream, unix.upstream))
	ca := filepath.Join(p.dataDir, "ca.crt")
	_, port, _ := net.SplitHostPort(p.r.https)
	for _, tt := range []struct {
		host, path string
		args       []string
		want       string
	}{
		{"localhost", "/hello/%3Cb%3E", nil, "<b>Hello &lt;b&gt;</b>!"},
		{"unix.localhost", "/hello/%3Cb%3E", nil, "<b>Hello &lt;b&gt;</b>!"},
		{"localhost", "/echo", []string{"--data-binary", "a=1&b=%20"}, "a=1&b=%20"},
		{"unix.localhost", "/echo", []string{"--data-binary", "posted"}, "posted"},
		{"localhost", "/status/503", nil, "status 503 from the app\n"},
	} {
		for _, proto := range []string{"--http1.1", "--http2"} {
			t.Run(tt.host+tt.path+proto, func(t *testing.T) {
				args := append([]string{"-sS", proto, "--cacert", ca, "--resolve", tt.host + ":" + port + ":127.0.0.1",
					"-w", "\n%{http_code} %{http_version}", "https://" + tt.host + ":" + port + tt.path}, tt.args...)
				out, err := exec.Command("curl", args...).Output()
				if err != nil {
					t.Fatalf("curl %v: %v", args, err)
				}
				body, status, _ := strings.Cut(string(out), "\n")
				if i := strings.LastIndex(string(out), "\n"); i >= 0 {
					body, status = string(out[:i]), string(out[i+1:])
				}
				wantStatus := "200"
				if strings.HasPrefix(tt.path, "/status/") {
					wantStatus = strings.TrimPrefix(tt.path, "/status/")
				}
				wantProto := map[string]string{"--http1.1": "1.1", "--http2": "2"}[proto]
				if body != tt.want || status != wantStatus+" "+wantProto {
					t.Errorf("curl %s https://%s%s = %q (%s), want %q (%s %s)", proto, tt.host, tt.path, body, status, tt.want, wantStatus, wantProto)
				}
			})
		}
	}
	if resp, body := p.get(t, "/builtin/x"); resp.StatusCode != 200 || body != "<b>Hello x</b>!" {
		t.Errorf("GET /builtin/x = %d %q, want httpsd's own hello", resp.StatusCode, body)
	}
	// The access log names the upstream and its time.
	line := waitLog(t, p.r, "request", 5*time.Second)
	waitUntil(t, 5*time.Second, "an access log line naming the unix upstream", func() bool {
		return strings.Contains(p.r.logs.String(), `"upstream":"`+unix.upstream+`","upstream_duration":`)
	})
	_ = line
	if got := p.metric(t, fmt.Sprintf(`httpsd_upstream_requests_total{code="200",upstream=%q}`, tcp.upstream)); got < 4 {
		t.Errorf("httpsd_upstream_requests_total{upstream=%s,code=200} = %v, want the requests counted", tcp.upstream, got)
	}
}

// TestProxyFailover runs two upstreams and kills one while clients keep
// sending GETs: after the first failure, requests go to the other (a GET
// that could not connect is retried there), none fails; when the killed
// one comes back, its health check brings it back into service.
func TestProxyFailover(t *testing.T) {
	a, b := startBottle(t, "tcp"), startBottle(t, "unix")
	p := startProxy(t, fmt.Sprintf(`hosts: [localhost]
routes:
  - path: /*
    proxy:
      upstreams: ["%s", "%s"]
      fail_timeout: 30s
      health: {path: /healthz, interval: 1s}
`, a.upstream, b.upstream))
	healthy := func(u string) float64 { return p.metric(t, fmt.Sprintf(`httpsd_upstream_healthy{upstream=%q}`, u)) }
	l := startLoad(p.client, "https://localhost/hello/x")
	ok, failed := &l.ok, &l.failed
	waitUntil(t, 10*time.Second, "requests flowing to both upstreams", func() bool { return ok.Load() > 50 })
	a.kill()
	waitUntil(t, 10*time.Second, "the killed upstream marked down", func() bool { return healthy(a.upstream) == 0 })
	atDown := failed.Load()
	before := ok.Load()
	waitUntil(t, 10*time.Second, "requests after the failure", func() bool { return ok.Load() > before+100 })
	if n := failed.Load() - atDown; n > 0 {
		t.Errorf("%d GETs failed after the killed upstream was marked down, want 0: %v", n, l.failures)
	}
	// The same address comes back; the health check notices.
	restartBottle(t, a)
	waitUntil(t, 15*time.Second, "the restarted upstream healthy again", func() bool { return healthy(a.upstream) == 1 })
	served := p.metric(t, fmt.Sprintf(`httpsd_upstream_requests_total{code="200",upstream=%q}`, a.upstream))
	waitUntil(t, 10*time.Second, "requests reaching the restarted upstream", func() bool {
		return p.metric(t, fmt.Sprintf(`httpsd_upstream_requests_total{code="200",upstream=%q}`, a.upstream)) > served
	})
	l.stop()
	t.Logf("failover: %d requests answered, %d failed (%d before the killed upstream was marked down: in flight on it when it died)",
		ok.Load(), failed.Load(), atDown)
}

// restartBottle starts the app again where b was (same address).
func restartBottle(t *testing.T, b *bottle) *bottle {
	t.Helper()
	args := b.cmd.Args
	nb := &bottle{upstream: b.upstream, dial: b.dial, done: make(chan error, 1)}
	nb.cmd = exec.Command(args[0], args[1:]...)
	if err := nb.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { nb.done <- nb.cmd.Wait() }()
	t.Cleanup(nb.stop)
	return nb
}

// TestProxyForwardedFor: a client's X-Forwarded-For reaches the app only
// from a trusted proxy; then the per-client limits and the access log use
// the address it names.
func TestProxyForwardedFor(t *testing.T) {
	app := startBottle(t, "tcp")
	p := startProxy(t, fmt.Sprintf(`hosts: [localhost]
trusted_proxies: [127.0.0.3]
limits: {rate_per_ip: 0.01, burst_per_ip: 1}
routes:
  - {path: /*, proxy: {upstreams: ["%s"]}}
`, app.upstream))
	type seen struct {
		Headers    map[string]string `json:"headers"`
		RemoteAddr string            `json:"remote_addr"`
	}
	from := func(ip, xff string) (int, seen) {
		c := clientFor(caPool(t, filepath.Join(p.dataDir, "ca.crt")), p.r.https)
		c.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}).DialContext(ctx, network, p.r.https)
		}
		req, _ := http.NewRequest("GET", "https://localhost/headers", nil)
		req.Header.Set("X-Forwarded-For", xff)
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("Forwarded", "for=6.6.6.6")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s seen
		json.NewDecoder(resp.Body).Decode(&s)
		return resp.StatusCode, s
	}
	code, s := from("127.0.0.2", "1.2.3.4")
	if code != 200 || s.Headers["X-Forwarded-For"] != "127.0.0.2" || s.Headers["X-Forwarded-Host"] != "localhost" ||
		s.Headers["Forwarded"] != "" || s.Headers["X-Forwarded-Proto"] != "https" {
		t.Errorf("untrusted peer with X-Forwarded-For 1.2.3.4: %d, the app saw %v; want X-Forwarded-For 127.0.0.2, Host localhost, no Forwarded", code, s.Headers)
	}
	code, s = from("127.0.0.3", "1.2.3.4")
	if code != 200 || s.Headers["X-Forwarded-For"] != "1.2.3.4, 127.0.0.3" {
		t.Errorf("trusted peer with X-Forwarded-For 1.2.3.4: %d, the app saw X-Forwarded-For %q; want \"1.2.3.4, 127.0.0.3\"", code, s.Headers["X-Forwarded-For"])
	}
	// The rate limit (one request per client) counts 1.2.3.4, not the proxy.
	if code, _ := from("127.0.0.3", "5.6.7.8"); code != 200 {
		t.Errorf("a second client behind the trusted proxy got %d, want 200: the limit must count clients, not the proxy", code)
	}
	if code, _ := from("127.0.0.3", "1.2.3.4"); code != 429 {
		t.Errorf("the first client again got %d, want 429", code)
	}
	waitUntil(t, 5*time.Second, "an access log line with remote 5.6.7.8", func() bool {
		return strings.Contains(p.r.logs.String(), `"remote":"5.6.7.8"`)
	})
}

// TestProxyStreaming: server-sent events arrive one by one, a 100 MB
// upload streams through with bounded memory, and a WebSocket echoes.
func TestProxyStreaming(t *testing.T) {
	app := startBottle(t, "tcp")
	ws := startWebSocketEcho(t)
	p := startProxy(t, fmt.Sprintf(`hosts: [localhost]
limits: {max_body_bytes: 200000000, write_timeout: 1s, read_timeout: 1s}
routes:
  - {path: /ws, proxy: {upstreams: ["%s"]}}
  - {path: /*, proxy: {upstreams: ["%s"]}}
`, ws, app.upstream))

	t.Run("server-sent events", func(t *testing.T) {
		const n, delay = 5, 400 * time.Millisecond
		start := time.Now()
		resp, err := p.client.Get(fmt.Sprintf("https://localhost/events?n=%d&delay=%v", n, delay.Seconds()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var arrived []time.Duration
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				arrived = append(arrived, time.Since(start))
			}
		}
		t.Logf("events arrived at %v (one every %v at the source); write_timeout 1s does not cut the stream", arrived, delay)
		if len(arrived) != n {
			t.Fatalf("%d events arrived, want %d", len(arrived), n)
		}
		// Each event arrives when it is sent, not with the last one.
		if spread := arrived[n-1] - arrived[0]; spread < (n-1)*delay/2 {
			t.Errorf("events arrived within %v of each other, want them spread as sent (%v apart): they were buffered", spread, delay)
		}
	})

	t.Run("100 MB upload", func(t *testing.T) {
		const size = 100 << 20
		h := sha256.New()
		body := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{1}), size), h)
		var peak atomic.Uint64
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-done:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if v := p.metric(t, "go_memstats_heap_alloc_bytes"); v > 0 && uint64(v) > peak.Load() {
					peak.Store(uint64(v))
				}
			}
		}()
		resp, err := p.client.Post("https://localhost/upload", "application/octet-stream", body)
		close(done)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("%d %s\n", size, hex.EncodeToString(h.Sum(nil)))
		t.Logf("100 MB upload: the app got %q; peak heap in use %.1f MiB (test client included)", got, float64(peak.Load())/(1<<20))
		if resp.StatusCode != 200 || string(got) != want {
			t.Errorf("POST /upload of 100 MB = %d %q, want %q", resp.StatusCode, got, want)
		}
		if peak.Load() > 64<<20 {
			t.Errorf("heap peaked at %.1f MiB during a 100 MB upload, want it streamed (under 64 MiB)", float64(peak.Load())/(1<<20))
		}
	})

	t.Run("WebSocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hc := clientFor(caPool(t, filepath.Join(p.dataDir, "ca.crt")), p.r.https)
		hc.Transport.(*http.Transport).ForceAttemptHTTP2 = false
		c, _, err := websocket.Dial(ctx, "wss://localhost/ws", &websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for i, msg := range []string{"hello", strings.Repeat("x", 100000), "after the write timeout"} {
			if i == 2 { // past write_timeout and read_timeout: a WebSocket lives on
				time.Sleep(1500 * time.Millisecond)
			}
			if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			_, got, err := c.Read(ctx)
			if err != nil || string(got) != msg {
				t.Fatalf("WebSocket echo of %d bytes = %d bytes, %v", len(msg), len(got), err)
			}
		}
		c.Close(websocket.StatusNormalClosure, "")
	})
}

// startWebSocketEcho starts a Go WebSocket echo server on loopback and
// returns its upstream address.
func startWebSocketEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if c.Write(r.Context(), typ, msg) != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestProxyErrors: an upstream nothing listens on gives 502, one too slow
// to answer 504, with short bodies that name nothing internal, and one
// log line naming the upstream.
func TestProxyErrors(t *testing.T) {
	app := startBottle(t, "tcp")
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	p := startProxy(t, fmt.Sprintf(`hosts: [localhost]
routes:
  - {path: /dead/*, proxy: {upstreams: ["%s"]}}
  - {path: /*, proxy: {upstreams: ["%s"], response_header_timeout: 1s}}
`, dead, app.upstream))
	for _, tt := range []struct {
		path   string
		status int
	}{
		{"/dead/x", 502},
		{"/slow?s=3", 504},
	} {
		resp, body := p.get(t, tt.path)
		if resp.StatusCode != tt.status || strings.Contains(body, "127.0.0.1") || len(body) > 64 {
			t.Errorf("GET %s = %d %q, want %d with a short body naming nothing internal", tt.path, resp.StatusCode, body, tt.status)
		}
	}
	m := waitLog(t, p.r, "proxy: upstream failed", 5*time.Second)
	if m["upstream"] != dead || !strings.Contains(fmt.Sprint(m["err"]), "refused") {
		t.Errorf("log line %v, want the upstream %s and the error", m, dead)
	}
}

// TestProxyReload switches a route's upstream with SIGHUP: new requests
// go to the new one, and one in flight finishes on the old.
func TestProxyReload(t *testing.T) {
	a, b := startBottle(t, "tcp"), startBottle(t, "unix")
	config := "hosts: [localhost]\nroutes:\n  - {path: /*, proxy: {upstreams: [\"%s\"]}}\n"
	p := startProxy(t, fmt.Sprintf(config, a.upstream))
	count := func(u string) float64 {
		return p.metric(t, fmt.Sprintf(`httpsd_upstream_requests_total{code="200",upstream=%q}`, u))
	}
	before := max(0, count(a.upstream)) // read before the slow request, which may be answered by the time the reload is done
	slow := make(chan string, 1)
	go func() {
		resp, err := p.client.Get("https://localhost/slow?s=2")
		if err != nil {
			slow <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- fmt.Sprint(resp.StatusCode, " ", string(body))
	}()
	waitUntil(t, 5*time.Second, "the slow request in flight", func() bool {
		return p.metric(t, "httpsd_http_requests_in_flight") >= 1
	})
	os.WriteFile(p.cfg, append(mustRead(t, p.cfg)[:0:0], []byte(strings.Replace(string(mustRead(t, p.cfg)), a.upstream, b.upstream, 1))...), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(t, p.r, "config reloaded", 5*time.Second)
	for range 5 {
		if resp, _ := p.get(t, "/hello/x"); resp.StatusCode != 200 {
			t.Errorf("GET after the reload = %d", resp.StatusCode)
		}
	}
	if got := count(b.upstream); got != 5 {
		t.Errorf("requests to the new upstream after the reload = %v, want 5", got)
	}
	if got := <-slow; got != "200 slow done\n" {
		t.Errorf("the request in flight during the reload = %q, want 200 from the old upstream", got)
	}
	if got := count(a.upstream); got != before+1 {
		t.Errorf("requests answered by the old upstream = %v, want only the one in flight (%v before)", got, before)
	}
}

// TestCheckUpstreams: check validates upstream addresses; check -online
// connects to each and says which does not answer.
func TestCheckUpstreams(t *testing.T) {
	app := startBottle(t, "unix")
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("hosts: [localhost]\ndata_dir: %s\nroutes:\n  - {path: /*, proxy: {upstreams: [%q, %q]}}\n",
		filepath.Join(t.TempDir(), "data"), app.upstream, dead)), 0o600)
	code, out, _ := runCmd(t, nil, "check", "-config", cfg)
	if code != 0 {
		t.Errorf("httpsd check with valid upstreams = exit %d, want 0:\n%s", code, out)
	}
	code, out, _ = runCmd(t, nil, "check", "-online", "-config", cfg)
	if code != 1 || !strings.Contains(out, "ok   upstream "+app.upstream) ||
		!strings.Contains(out, "FAIL upstream "+dead) || !strings.Contains(out, "nothing listens there") {
		t.Errorf("httpsd check -online = exit %d:\n%s\nwant exit 1, ok for %s and FAIL for %s", code, out, app.upstream, dead)
	}
}

// TestFilesRoute serves static files beside a proxied app, through httpsd
// over real TLS: the files route wins for /static/, Range and 304 work,
// precompressed siblings are chosen, escapes are 404.
func TestFilesRoute(t *testing.T) {
	app := startBottle(t, "unix")
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "app.css"), []byte("body { color: red }\n"), 0o644)
	os.WriteFile(filepath.Join(root, "app.css.br"), []byte("brotli bytes"), 0o644)
	os.WriteFile(filepath.Join(root, ".env"), []byte("SECRET=1"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(root, "passwd"))
	p := startProxy(t, fmt.Sprintf(`hosts: [localhost]
routes:
  - {path: /static/*file, files: {root: %q, cache_control: "public, max-age=60"}}
  - {path: /*, proxy: {upstreams: [%q]}}
`, root, app.upstream))
	req := func(path string, h map[string]string) (*http.Response, string) {
		r, _ := http.NewRequest("GET", "https://localhost"+path, nil)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		resp, err := p.client.Do(r)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, body := req("/static/app.css", map[string]string{"Accept-Encoding": "identity"})
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || body != "body { color: red }\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") ||
		resp.Header.Get("Cache-Control") != "public, max-age=60" || etag == "" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("GET /static/app.css = %d %q %v, want the file with its type, ETag, Vary and Cache-Control", resp.StatusCode, body, resp.Header)
	}
	for _, tt := range []struct {
		path   string
		header map[string]string
		status int
		body   string
	}{
		{"/static/app.css", map[string]string{"Accept-Encoding": "br, gzip"}, 200, "brotli bytes"},
		{"/static/app.css", map[string]string{"Accept-Encoding": "identity", "Range": "bytes=0-3"}, 206, "body"},
		{"/static/app.css", map[string]string{"Accept-Encoding": "identity", "If-None-Match": etag}, 304, ""},
		{"/static/.env", nil, 404, ""},
		{"/static/passwd", nil, 404, ""},
		{"/static/..%2f..%2fetc%2fpasswd", nil, 404, ""},
		{"/static/%2e%2e/%2e%2e/etc/passwd", nil, 404, ""},
		{"/hello/app", nil, 200, "<b>Hello app</b>!"}, // the proxied app
	} {
		resp, body := req(tt.path, tt.header)
		if resp.StatusCode != tt.status || (tt.body != "" && body != tt.body) || strings.Contains(body, "root:") {
			t.Errorf("GET %s %v = %d %q, want %d %q", tt.path, tt.header, resp.StatusCode, body, tt.status, tt.body)
		}
	}
}
