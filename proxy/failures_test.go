package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// front serves p over HTTP/1.1 on loopback, as httpsd's server would,
// with readTimeout and maxBody (0: none) and returns its address.
func front(t *testing.T, p http.Handler, readTimeout time.Duration, maxBody int64) string {
	t.Helper()
	h := p
	if maxBody > 0 {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			p.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = readTimeout
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// rawRequest writes req on a new connection to addr, closes the writing
// side after a pause when cut, and returns the status line of the answer
// ("" if none).
func rawRequest(t *testing.T, addr, req string, cut bool) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, req)
	if cut {
		c.(*net.TCPConn).CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestClientFaultsDoNotMarkDown: requests that fail because of their
// client (a cut or oversized upload, one that comes too slowly) or of
// their own slowness (no answer within ResponseHeaderTimeout) get their
// own status and leave the only upstream in service: the next request is
// answered.
func TestClientFaultsDoNotMarkDown(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	const upload = "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
	for _, tt := range []struct {
		name        string
		readTimeout time.Duration
		maxBody     int64
		req         string
		cut         bool
		want        string // status line; "" for none (the client is gone)
	}{
		{"cut upload", 0, 0, upload + "abc", true, ""},
		{"oversized upload", 0, 1000, upload + strings.Repeat("a", 5000), false, "HTTP/1.1 413 Request Entity Too Large"},
		{"slow upload", 500 * time.Millisecond, 0, upload + "abc", false, "HTTP/1.1 408 Request Timeout"},
		{"slow answer", 0, 0, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", false, "HTTP/1.1 504 Gateway Timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newProxy(t, Options{Upstreams: []string{up.URL}, MaxFails: 1, ResponseHeaderTimeout: time.Second})
			addr := front(t, p, tt.readTimeout, tt.maxBody)
			if got := rawRequest(t, addr, tt.req, tt.cut); got != tt.want && !(tt.want == "" && strings.Contains(got, "499")) {
				t.Errorf("%s: answer %q, want %q", tt.name, got, tt.want)
			}
			if !eventually(5*time.Second, func() bool { return p.ups[0].inFlight.Load() == 0 }) {
				t.Errorf("%s: %d requests in flight on the upstream after it ended, want 0", tt.name, p.ups[0].inFlight.Load())
			}
			if !p.ups[0].usable(time.Now()) {
				t.Errorf("%s marked the only upstream down (%v)", tt.name, p.ups[0].lastErr)
			}
			resp, err := http.Get("http://" + addr + "/next")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET /next after %s = %d, want 200", tt.name, resp.StatusCode)
			}
		})
	}
}

// TestBreakingUpstream: an upstream that resets its connections is marked
// down after MaxFails requests in a row; meanwhile idempotent requests
// without a body are sent again to the other upstream and all succeed,
// and a POST is not sent again (502).
func TestBreakingUpstream(t *testing.T) {
	breaking := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.(*net.TCPConn).SetLinger(0) // RST
			c.Close()
		}
	}))
	t.Cleanup(breaking.Close)
	good := newBackend(t, "good", false)
	p := newProxy(t, Options{Upstreams: []string{breaking.URL, good.addr}, MaxFails: 3})
	if resp, body := do(p, "POST", "/p", strings.NewReader("x"), nil); resp.StatusCode != 502 {
		t.Errorf("POST through a breaking upstream = %d %q, want 502 (not sent again)", resp.StatusCode, body)
	}
	for i := range 6 {
		if resp, body := do(p, "GET", fmt.Sprintf("/g%d", i), nil, nil); resp.StatusCode != 200 {
			t.Errorf("GET /g%d = %d %q, want 200 (sent again to the good upstream)", i, resp.StatusCode, body)
		}
	}
	if p.ups[0].usable(time.Now()) {
		t.Errorf("an upstream that broke every request is usable, want it marked down after %d in a row", 3)
	}
}

// TestAllMarkedDown: an upstream marked down is still tried when no other
// is usable, so that one failure cannot take a site down: once the app is
// back, the next request is answered, not refused for FailTimeout.
func TestAllMarkedDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := newProxy(t, Options{Upstreams: []string{"http://" + addr}, FailTimeout: time.Hour})
	if resp, _ := do(p, "GET", "/", nil, nil); resp.StatusCode != 502 {
		t.Fatalf("GET with the app down = %d, want 502", resp.StatusCode)
	}
	if p.ups[0].usable(time.Now()) {
		t.Fatalf("a refusing upstream is usable, want it marked down")
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "back") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if resp, body := do(p, "GET", "/", nil, nil); resp.StatusCode != 200 || body != "back" {
		t.Errorf("GET with the app back = %d %q, want 200 at once", resp.StatusCode, body)
	}
	if !p.ups[0].usable(time.Now()) {
		t.Errorf("an upstream that answered is still marked down")
	}
}

// TestInFlightAfterAbort: a client that goes away in the middle of a
// proxied answer (the copy ends in http.ErrAbortHandler) leaves nothing
// counted in flight, so that least_conn keeps choosing right.
func TestInFlightAfterAbort(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 200 {
			if _, err := w.Write(make([]byte, 32<<10)); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(5 * time.Millisecond)
		}
	}))
	t.Cleanup(up.Close)
	p := newProxy(t, Options{Upstreams: []string{up.URL}, LB: "least_conn"})
	addr := front(t, p, 0, 0)
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
		io.ReadFull(c, make([]byte, 64<<10))
		c.Close()
	}
	if !eventually(10*time.Second, func() bool { return p.ups[0].inFlight.Load() == 0 }) {
		t.Errorf("%d requests counted in flight after 3 aborted downloads, want 0", p.ups[0].inFlight.Load())
	}
}

// eventually polls cond until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}
