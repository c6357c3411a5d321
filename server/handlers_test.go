package server

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	h := New(Options{
		Hosts:      []string{"localhost", "127.0.0.1", "::1", "*.wild.example"},
		HSTSMaxAge: 48 * time.Hour,
	}).Handler()
	tests := []struct {
		method, target, host string
		sni                  string // TLS server name; "" sends none
		status               int
		body                 string // exact, when not ""
		header               map[string]string
	}{
		{"GET", "/hello/world", "localhost", "", 200, "<b>Hello world</b>!", map[string]string{"Content-Type": "text/html; charset=UTF-8"}},
		{"GET", "/hello/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "localhost", "", 404, "", nil},
		{"GET", "/hello/%3Cscript%3E", "localhost", "", 200, "<b>Hello &lt;script&gt;</b>!", nil},
		{"GET", `/hello/a&b"c'd`, "localhost", "", 200, "<b>Hello a&amp;b&quot;c&#039;d</b>!", nil},
		{"GET", "/hello/%C3%A9t%C3%A9%20%E2%9C%93", "localhost", "", 200, "<b>Hello été ✓</b>!", nil},
		{"GET", "/hello/%FF", "localhost", "", 200, "<b>Hello \uFFFD</b>!", nil},
		{"HEAD", "/hello/world", "localhost", "", 200, "", map[string]string{"Content-Type": "text/html; charset=UTF-8"}},
		{"GET", "/hello/a%2Fb", "localhost", "", 404, "", nil},
		{"GET", "/hello/..%2Fhealthz", "localhost", "", 404, "", nil}, // encoded dot segments are never routed
		{"GET", "/hello/../healthz", "localhost", "", 308, "", map[string]string{"Location": "/healthz"}},
		{"POST", "/hello/../hello/x", "localhost", "", 400, "", nil},
		{"GET", "/hello/world/", "localhost", "", 404, "", nil},
		{"GET", "/hello/", "localhost", "", 404, "", nil},
		{"GET", "/HELLO/world", "localhost", "", 404, "", nil},
		{"GET", "/nope", "localhost", "", 404, "404 not found\n", nil},
		{"POST", "/hello/world", "localhost", "", 405, "", map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{"DELETE", "/healthz", "localhost", "", 405, "", map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		{"GET", "/healthz", "localhost", "", 200, "ok\n", nil},
		{"GET", "/healthz", "10.1.2.3:8443", "", 200, "ok\n", nil}, // probes by IP
		{"GET", "/hello/world", "evil.example", "", 421, "421 misdirected request\n", nil},
		{"GET", "/hello/world", "localhost", "localhost", 200, "", nil},
		{"GET", "/hello/world", "localhost", "evil.example", 421, "", nil}, // SNI not served
		{"GET", "/hello/world", "evil.example", "localhost", 421, "", nil}, // Host not served
		{"GET", "/hello/world", "LocalHost.:8443", "", 200, "", nil},
		{"GET", "/hello/world", "127.0.0.1:8443", "", 200, "", nil},
		{"GET", "/hello/world", "[::1]:8443", "", 200, "", nil},
		{"GET", "/hello/world", "10.0.0.1", "", 421, "", nil},
		{"GET", "/hello/world", "api.wild.example", "", 200, "", nil},
		{"GET", "/hello/world", "wild.example", "", 421, "", nil},
		{"GET", "/hello/world", "a.b.wild.example", "", 421, "", nil},
		{"GET", "/hello/world", "[::1]evil", "", 400, "", nil},
		{"GET", "/hello/world", "[::1", "", 400, "", nil},
		{"GET", "/hello/world", "[::1]:84x3", "", 400, "", nil},
		{"GET", "/hello/world", "[fe80::1%25eth0]", "", 400, "", nil},
		{"GET", "/hello/world", "::1", "", 400, "", nil},
		{"GET", "/hello/world", "localhost:", "", 200, "", nil},
		{"GET", "/healthz", "[::1]evil", "", 400, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.host+tt.target, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "https://localhost"+tt.target, nil)
			r.Host = tt.host
			r.TLS.ServerName = tt.sni
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("%s %s (Host %s) = %d, want %d; body %q", tt.method, tt.target, tt.host, w.Code, tt.status, w.Body)
			}
			if tt.body != "" && w.Body.String() != tt.body {
				t.Errorf("%s %s body = %q, want %q", tt.method, tt.target, w.Body, tt.body)
			}
			if strings.Contains(w.Body.String(), "<script>") {
				t.Errorf("%s %s echoed <script>: %q", tt.method, tt.target, w.Body)
			}
			want := map[string]string{"X-Content-Type-Options": "nosniff", "Strict-Transport-Security": "max-age=172800"}
			for k, v := range tt.header {
				want[k] = v
			}
			for k, v := range want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s %s header %s = %q, want %q", tt.method, tt.target, k, got, v)
				}
			}
		})
	}
}

func TestNoHSTSWhenOff(t *testing.T) {
	h := New(Options{Hosts: []string{"localhost"}}).Handler()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "https://localhost/hello/x", nil))
	if got := w.Header().Get("Strict-Transport-Security"); got != "" {
		t.Errorf("Strict-Transport-Security = %q, want none with HSTSMaxAge 0", got)
	}
}

func TestPanicRecovery(t *testing.T) {
	var logs bytes.Buffer
	opts := Options{Hosts: []string{"localhost"}, Logger: slog.New(slog.NewTextHandler(&logs, nil)), AccessLog: true}
	h := New(opts).app(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		panic("boom")
	}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "https://localhost/x", nil))
	if w.Code != 500 {
		t.Errorf("GET /x (panics) = %d, want 500", w.Code)
	}
	if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("500 response X-Content-Type-Options = %q, want nosniff", got)
	}
	for _, want := range []string{`msg="panic serving request"`, "panic=boom", "status=500"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log = %q, want it to contain %q", logs.String(), want)
		}
	}

	// http.ErrAbortHandler is net/http's way to abort a response: let it through.
	abort := New(opts).app(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler to pass through", v)
		}
	}()
	abort.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "https://localhost/x", nil))
}

func TestAccessLog(t *testing.T) {
	var logs bytes.Buffer
	h := New(Options{Hosts: []string{"localhost"}, AccessLog: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Handler()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "https://localhost/hello/world", nil))
	line := logs.String()
	for _, want := range []string{"msg=request", "method=GET", "host=localhost", "path=/hello/world", "status=200", "bytes=19", "duration=", "remote=192.0.2.1:1234", "proto=HTTP/1.1", `tls="TLS 1.2"`} {
		if !strings.Contains(line, want) {
			t.Errorf("access log %q lacks %q", line, want)
		}
	}
	logs.Reset()
	New(Options{Hosts: []string{"localhost"}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Handler().
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "https://localhost/hello/world", nil))
	if logs.Len() != 0 {
		t.Errorf("access log with AccessLog false = %q, want nothing", logs.String())
	}
}

func TestRedirect(t *testing.T) {
	tests := []struct {
		port           int
		method, target string
		host           string
		status         int
		location       string
	}{
		{8443, "GET", "/hello/x?y=1&z=%2F", "localhost", 308, "https://localhost:8443/hello/x?y=1&z=%2F"},
		{8443, "POST", "/form", "localhost:8080", 308, "https://localhost:8443/form"},
		{443, "GET", "/", "example.com", 308, "https://example.com/"},
		{0, "GET", "/a%20b", "EXAMPLE.com:80", 308, "https://example.com/a%20b"},
		{8443, "GET", "/", "[::1]:8080", 308, "https://[::1]:8443/"},
		{8443, "GET", "/", "evil.example", 421, ""},
		{8443, "GET", "//evil.example/", "evil.example", 421, ""},
		{8443, "GET", "//evil.example/", "localhost", 308, "https://localhost:8443//evil.example/"},
		{8443, "GET", "/x", "localhost@evil.example", 400, ""},
		{8443, "GET", "/x", "[::1]evil", 400, ""},
		{8443, "GET", "/x", "[::1", 400, ""},
		{8443, "GET", "/x", "localhost:80x", 400, ""},
	}
	for _, tt := range tests {
		h := redirectHandler(New(Options{Hosts: []string{"localhost", "example.com", "::1"}}), tt.port)
		r := httptest.NewRequest(tt.method, "http://localhost"+tt.target, nil)
		r.Host = tt.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("%s http://%s%s = %d, want %d", tt.method, tt.host, tt.target, w.Code, tt.status)
		}
		if got := w.Header().Get("Location"); got != tt.location {
			t.Errorf("%s http://%s%s Location = %q, want %q", tt.method, tt.host, tt.target, got, tt.location)
		}
		if tt.status == 308 {
			body, _ := io.ReadAll(w.Body)
			if len(body) != 0 {
				t.Errorf("redirect body = %q, want none (no content over plain HTTP)", body)
			}
		}
	}
}
