package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// syncLog collects what run writes to stderr, safe for concurrent use.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// find returns the first JSON log line whose msg starts with msg, or nil.
func (b *syncLog) find(msg string) map[string]any {
	for _, line := range strings.Split(b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		if s, _ := m["msg"].(string); strings.HasPrefix(s, msg) {
			return m
		}
	}
	return nil
}

// running is a run call serving in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
	logs   *syncLog
	https  string // 127.0.0.1:PORT
	http   string
	admin  string
}

// startRun calls run with args and the environment vars in a goroutine and
// waits for its start-up log line. The config must log JSON.
func startRun(t *testing.T, vars map[string]string, args ...string) *running {
	t.Helper()
	r := launchRun(t, vars, args...)
	r.waitServing(t)
	return r
}

// launchRun calls run as startRun does, without waiting.
func launchRun(t *testing.T, vars map[string]string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), logs: &syncLog{}}
	go func() {
		r.done <- run(ctx, append([]string{"httpsd"}, args...), env(vars), os.Stdout, r.logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("run did not return within 10s of cancel")
		}
	})
	return r
}

// waitServing waits for run's start-up log line and reads its addresses.
func (r *running) waitServing(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := r.logs.find("httpsd serving"); m != nil {
			r.https, _ = m["https"].(string)
			r.http, _ = m["http"].(string)
			r.admin, _ = m["admin"].(string)
			return
		}
		select {
		case err := <-r.done:
			r.done <- err // for Cleanup
			t.Fatalf("run returned before serving: %v\n%s", err, r.logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("no start-up line within 10s:\n%s", r.logs)
}

// waitUntil fails the test unless cond holds within timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !eventually(timeout, cond) {
		t.Fatalf("not within %v: %s", timeout, what)
	}
}

// stop cancels run and checks that it returns nil.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("run after cancel = %v, want nil", err)
		}
		r.done <- err // for Cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return within 10s of cancel")
	}
}

// caPool reads a PEM CA file into a pool holding only it.
func caPool(t *testing.T, file string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", file)
	}
	return pool
}

// clientFor returns an HTTPS client that trusts only roots and connects to
// addr whatever the URL's host, like curl --resolve.
func clientFor(roots *x509.CertPool, addr string) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// port returns the port of a host:port address.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// dataDirEnv returns the environment for testdata/e2e.yaml with a fresh
// data_dir, and that directory.
func dataDirEnv(t *testing.T) (map[string]string, string) {
	dir := filepath.Join(t.TempDir(), "data")
	return map[string]string{"HTTPSD_DATA_DIR": dir}, dir
}

// eventually polls cond every 10ms until it holds or timeout passes, and
// reports whether it held: tests wait on conditions, not on time.
func eventually(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// TestStartupInterruptible: whatever start-up waits on, SIGINT or SIGTERM
// (a cancelled context) ends it.
func TestStartupInterruptible(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stuck := make(chan struct{})
	defer close(stuck)
	done := make(chan error, 1)
	go func() { done <- interruptible(ctx, func() error { <-stuck; return nil }) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("interruptible after cancel = %v, want nil (a clean stop)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("start-up still waiting 10s after it was cancelled")
	}
}

// load is GETs sent in the background by 4 workers until stop, counted.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []string // the first few
	stopc      chan struct{}
	wg         sync.WaitGroup
}

// startLoad sends GET url with client from 4 workers until stop.
func startLoad(client *http.Client, url string) *load {
	l := &load{stopc: make(chan struct{})}
	for range 4 {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stopc:
					return
				default:
				}
				resp, err := client.Get(url)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.failures) < 5 {
						l.failures = append(l.failures, fmt.Sprint(err, resp))
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		})
	}
	return l
}

// stop ends the load and waits for its workers.
func (l *load) stop() {
	close(l.stopc)
	l.wg.Wait()
}
