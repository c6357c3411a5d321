package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/httpsd/httpsd/metrics"
)

// startAdmin serves NewAdmin(opts) on loopback and returns its address.
func startAdmin(t *testing.T, opts AdminOptions) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := NewAdmin(opts)
	go a.Serve(ln)
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// adminGet GETs path from the admin listener at addr with Host host.
func adminGet(t *testing.T, addr, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

func TestAdminHostCheck(t *testing.T) {
	reg := new(metrics.Registry)
	private := startAdmin(t, AdminOptions{Metrics: reg, Addr: "127.0.0.1:9090"})
	public := startAdmin(t, AdminOptions{Metrics: reg, Public: true})
	_, port, _ := net.SplitHostPort(private)
	for _, tt := range []struct {
		addr, host string
		status     int
	}{
		{private, "127.0.0.1:" + port, 200},
		{private, "localhost:" + port, 200},
		{private, "[::1]:" + port, 200},
		{private, "127.0.0.1", 200},
		{private, "evil.example:" + port, 421}, // DNS rebinding
		{private, "evil.example", 421},
		{private, "127.0.0.1.evil.example", 421},
		{private, "[::1]evil", 421},
		{public, "evil.example", 200},
	} {
		if code, _ := adminGet(t, tt.addr, tt.host, "/metrics"); code != tt.status {
			t.Errorf("GET /metrics with Host %s = %d, want %d", tt.host, code, tt.status)
		}
	}
}

// TestHealthzSeesHTTPSHang stalls the HTTPS side the way a stuck access
// log output once did (every request blocked writing its line): the
// admin listener, which does not log, stays up, so its /healthz must ask
// the HTTPS listener itself to notice.
func TestHealthzSeesHTTPSHang(t *testing.T) {
	stuck := &stuckWriter{release: make(chan struct{})}
	t.Cleanup(stuck.unblock)
	ts := newTestServer(t, Options{AccessLog: true, AccessLogWriter: stuck}, nil)
	admin := startAdmin(t, AdminOptions{Live: ts.Probe, Addr: "127.0.0.1:0"})
	if !eventually(5*time.Second, func() bool { code, _ := adminGet(t, admin, "127.0.0.1", "/healthz"); return code == 200 }) {
		t.Fatal("GET /healthz while HTTPS answers is not 200")
	}
	stuck.block()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := ts.Probe(ctx); err == nil {
		t.Fatal("Probe while every HTTPS request hangs = nil, want an error")
	}
	code, body := adminGet(t, admin, "127.0.0.1", "/healthz")
	if code != 503 || !strings.Contains(body, "https") {
		t.Errorf("GET /healthz while HTTPS hangs = %d %q, want 503 naming https", code, body)
	}
}

// stuckWriter writes normally until block, then blocks every Write until
// unblock, as a pipe nobody reads does.
type stuckWriter struct {
	mu      sync.Mutex
	blocked bool
	release chan struct{}
	once    sync.Once
}

func (w *stuckWriter) block() { w.mu.Lock(); w.blocked = true; w.mu.Unlock() }

func (w *stuckWriter) unblock() { w.once.Do(func() { close(w.release) }) }

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	blocked := w.blocked
	w.mu.Unlock()
	if blocked {
		<-w.release
	}
	return len(p), nil
}

// TestReadyzWarnings: warnings are listed under the answer, ready or not,
// without changing its status.
func TestReadyzWarnings(t *testing.T) {
	warn := func() []string { return []string{"storage down"} }
	tests := []struct {
		name     string
		opts     AdminOptions
		code     int
		wantBody string
	}{
		{"ready", AdminOptions{}, 200, "ready\n"},
		{"ready with a warning", AdminOptions{Warnings: warn}, 200, "ready\nwarning: storage down\n"},
		{"not ready", AdminOptions{Ready: func() error { return errors.New("no cert") }}, 503, "not ready: no cert\n"},
		{"not ready with a warning", AdminOptions{Ready: func() error { return errors.New("no cert") }, Warnings: warn},
			503, "not ready: no cert\nwarning: storage down\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startAdmin(t, tt.opts)
			if code, body := adminGet(t, addr, "localhost", "/readyz"); code != tt.code || body != tt.wantBody {
				t.Errorf("GET /readyz = %d %q, want %d %q", code, body, tt.code, tt.wantBody)
			}
		})
	}
}
