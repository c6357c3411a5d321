package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/httpsd/httpsd/metrics"
)

func TestH3Hello(t *testing.T) {
	reg := new(metrics.Registry)
	hs := newH3TestServer(t, Options{Metrics: reg})
	client, _ := hs.h3Client(t, "")
	resp, err := client.Get(hs.url + "/hello/world")
	if err != nil {
		t.Fatalf("GET /hello/world over HTTP/3: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "<b>Hello world</b>!" || resp.Proto != "HTTP/3.0" {
		t.Errorf("GET /hello/world = %d %q over %s, want 200 %q over HTTP/3.0", resp.StatusCode, body, resp.Proto, "<b>Hello world</b>!")
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
	}
	if got := resp.Header.Get("Alt-Svc"); got != "" {
		t.Errorf("HTTP/3 response has Alt-Svc %q, want none", got)
	}
	if !eventually(5*time.Second, func() bool { return hs.logLine("path=/hello/world", "proto=HTTP/3.0", `tls="TLS 1.3"`) != "" }) {
		t.Errorf("no access log line with proto=HTTP/3.0 and TLS 1.3:\n%s", hs.logs)
	}
	labels := map[string]string{"route": "/hello/:name", "code": "200", "proto": "HTTP/3.0"}
	if got := counterValue(t, reg, "httpsd_http_requests_total", labels); got != 1 {
		t.Errorf("httpsd_http_requests_total%v = %v, want 1", labels, got)
	}
	if got := counterValue(t, reg, "httpsd_tls_handshakes_total", map[string]string{"version": "TLS 1.3"}); got < 1 {
		t.Errorf("httpsd_tls_handshakes_total{version=TLS 1.3} = %v, want the QUIC handshake counted", got)
	}
}

// TestH3Refusals: HTTP/3 requests get the refusals the others get, from
// the same checks, counted and logged the same way.
func TestH3Refusals(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		req    func(url string) *http.Request
		before string // a path to hold busy first, or ""
		want   int
	}{
		{"unknown host", Limits{}, func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/hello/x", nil)
			r.Host = "other.example"
			return r
		}, "", 421},
		{"body over max_body_bytes", Limits{MaxBodyBytes: 10}, func(url string) *http.Request {
			r, _ := http.NewRequest("POST", url+"/hello/x", strings.NewReader(strings.Repeat("a", 100)))
			return r
		}, "", 413},
		{"header over max_header_bytes", Limits{MaxHeaderBytes: 2048}, func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/hello/x", nil)
			r.Header.Set("X-Big", strings.Repeat("a", 3000))
			return r
		}, "", 431},
		{"over rate_per_ip", Limits{RatePerIP: 0.001, BurstPerIP: 1}, func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/hello/x", nil)
			return r
		}, "/hello/first", 429},
		{"over max_requests_per_ip", Limits{MaxRequestsPerIP: 1, QueueTimeout: 50 * time.Millisecond}, func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/hello/x", nil)
			return r
		}, "/block", 429},
		{"over max_concurrent_requests", Limits{MaxConcurrent: 1, QueueTimeout: 50 * time.Millisecond}, func(url string) *http.Request {
			r, _ := http.NewRequest("GET", url+"/hello/x", nil)
			return r
		}, "/block", 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			block, started := make(chan struct{}), make(chan struct{}, 1)
			handler := http.NewServeMux()
			handler.HandleFunc("/block", func(w http.ResponseWriter, r *http.Request) {
				started <- struct{}{}
				<-block
			})
			handler.Handle("/", defaultRoutes())
			reg := new(metrics.Registry)
			hs := newH3TestServer(t, Options{Metrics: reg, Limits: tt.limits, Handler: handler})
			t.Cleanup(func() { close(block) }) // before the server's cleanup waits for its handlers
			client, _ := hs.h3Client(t, "")
			if tt.before != "" {
				go func() {
					if resp, err := client.Get(hs.url + tt.before); err == nil {
						resp.Body.Close()
					}
				}()
				if tt.before == "/block" {
					<-started
				} else if !eventually(5*time.Second, func() bool { return hs.logLine("path="+tt.before) != "" }) {
					t.Fatalf("GET %s not answered", tt.before)
				}
			}
			// A second connection: the first has max_requests_per_ip streams.
			second, _ := hs.h3Client(t, "")
			resp, err := second.Do(tt.req(hs.url))
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want || resp.Proto != "HTTP/3.0" {
				t.Errorf("%s over HTTP/3 = %d over %s, want %d over HTTP/3.0", tt.name, resp.StatusCode, resp.Proto, tt.want)
			}
			status := "status=" + strconv.Itoa(tt.want)
			if !eventually(5*time.Second, func() bool { return hs.logLine(status, "proto=HTTP/3.0") != "" }) {
				t.Errorf("no access log line with %s proto=HTTP/3.0:\n%s", status, hs.logs)
			}
		})
	}
}

// TestAltSvc: HTTP/1.1 and HTTP/2 answers for a served host advertise
// HTTP/3 on the HTTPS port; refusals (421, 429) do not.
func TestAltSvc(t *testing.T) {
	hs := newH3TestServer(t, Options{Limits: Limits{RatePerIP: 0.001, BurstPerIP: 3}})
	want := `h3=":` + hs.addr[strings.LastIndexByte(hs.addr, ':')+1:] + `"; ma=2592000`
	for _, tt := range []struct {
		name, proto, host string
		status            int
		altSvc            string
	}{
		{"h1", "HTTP/1.1", "", 200, want},
		{"h2", "HTTP/2.0", "", 200, want},
		{"421", "HTTP/2.0", "other.example", 421, ""},
		{"429", "HTTP/2.0", "", 429, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := hs.client.Transport.(*http.Transport).Clone()
			if tt.proto == "HTTP/1.1" {
				tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
				tr.ForceAttemptHTTP2 = false
			}
			req, _ := http.NewRequest("GET", hs.url+"/hello/x", nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			tr.CloseIdleConnections()
			if resp.StatusCode != tt.status || resp.Proto != tt.proto || resp.Header.Get("Alt-Svc") != tt.altSvc {
				t.Errorf("GET = %d over %s with Alt-Svc %q, want %d over %s with %q",
					resp.StatusCode, resp.Proto, resp.Header.Get("Alt-Svc"), tt.status, tt.proto, tt.altSvc)
			}
		})
	}
}

// TestH3ShutdownLetsRequestsFinish: Shutdown sends GOAWAY, lets a request
// in flight finish, closes idle connections at once and returns nil.
func TestH3ShutdownLetsRequestsFinish(t *testing.T) {
	started := make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.Handle("/slow", slowHandler(300*time.Millisecond, started))
	mux.Handle("/", defaultRoutes())
	hs := newH3TestServer(t, Options{Handler: mux})
	client, _ := hs.h3Client(t, "")
	idle, _ := hs.h3Client(t, "127.0.0.3")
	if resp, err := idle.Get(hs.url + "/hello/warm"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := client.Get(hs.url + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{resp.StatusCode, string(body), err}
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v, want nil", err)
	}
	t.Logf("Shutdown took %v with a 300ms request in flight and an idle HTTP/3 connection", time.Since(start).Round(time.Millisecond))
	r := <-got
	if r.err != nil || r.status != 200 || r.body != "done" {
		t.Errorf("GET /slow during shutdown = %d %q, %v; want 200 \"done\"", r.status, r.body, r.err)
	}
	select {
	case err := <-hs.h3done:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeQUIC = %v, want http.ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("ServeQUIC still running 5s after Shutdown")
	}
	fresh, _ := hs.h3Client(t, "")
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	req, _ := http.NewRequestWithContext(ctx2, "GET", hs.url+"/hello/x", nil)
	if resp, err := fresh.Do(req); err == nil {
		resp.Body.Close()
		t.Error("GET over HTTP/3 after Shutdown succeeded, want an error")
	}
}

// TestH3IdleTimeout: an HTTP/3 connection without requests for
// Limits.IdleTimeout is closed, and leaves the connection count.
func TestH3IdleTimeout(t *testing.T) {
	hs := newH3TestServer(t, Options{Limits: Limits{IdleTimeout: 300 * time.Millisecond}})
	client, _ := hs.h3Client(t, "")
	resp, err := client.Get(hs.url + "/hello/idle")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	start := time.Now()
	if !eventually(10*time.Second, func() bool { return hs.OpenConns() == 0 }) {
		t.Fatalf("the idle HTTP/3 connection is still open %v after a 300ms idle timeout", time.Since(start))
	}
	t.Logf("idle HTTP/3 connection closed %v after its request (idle_timeout 300ms)", time.Since(start).Round(time.Millisecond))
}
