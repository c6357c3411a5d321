package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bottle is the Bottle app of the Apache set-up (testdata/bottle/app.py)
// running under gunicorn, as the backend httpsd proxies to.
type bottle struct {
	upstream string // for proxy.upstreams: http://127.0.0.1:PORT or unix:/path
	cmd      *exec.Cmd
	done     chan error
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
}

// client talks to the app directly, whatever the URL's host.
func (b *bottle) client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: b.dial}}
}

// startBottle starts gunicorn (installing gunicorn and python3-bottle
// from Debian when missing) on loopback TCP ("tcp") or a unix socket
// ("unix") and waits until it answers; it is stopped when the test ends.
func startBottle(t *testing.T, network string) *bottle {
	t.Helper()
	testDeps(t, "gunicorn", "python3-bottle")
	b := &bottle{done: make(chan error, 1)}
	var bind string
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) { return nil, nil }
	switch network {
	case "tcp":
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		bind, b.upstream = addr, "http://"+addr
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}
	case "unix":
		sock := filepath.Join(t.TempDir(), "app.sock")
		bind, b.upstream = "unix:"+sock, "unix:"+sock
		dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}
	default:
		t.Fatalf("startBottle: network %q", network)
	}
	// gthread workers: threads as mod_wsgi's daemon processes have them,
	// so slow and streaming requests do not hold the only worker.
	b.cmd = exec.Command("/usr/bin/gunicorn", "--chdir", "testdata/bottle", "--bind", bind,
		"--worker-class", "gthread", "--workers", "2", "--threads", "8", "--timeout", "120",
		"--graceful-timeout", "1", "--error-logfile", "-", "app:application")
	out, err := os.CreateTemp(t.TempDir(), "gunicorn")
	if err != nil {
		t.Fatal(err)
	}
	b.cmd.Stdout, b.cmd.Stderr = out, out
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start gunicorn: %v", err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(b.stop)
	b.dial = dial
	client := b.client()
	defer client.CloseIdleConnections()
	ok := eventually(20*time.Second, func() bool {
		resp, err := client.Get("http://app/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if !ok {
		log, _ := os.ReadFile(out.Name())
		t.Fatalf("gunicorn did not answer within 20s:\n%s", log)
	}
	return b
}

// stop ends gunicorn (SIGTERM, then SIGKILL) and waits for it; stopping
// twice is fine.
func (b *bottle) stop() {
	if b.cmd.Process == nil {
		return
	}
	b.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-b.done:
		b.done <- err
	case <-time.After(5 * time.Second):
		b.cmd.Process.Kill()
		b.done <- <-b.done
	}
}

// kill ends gunicorn at once, as a crash would.
func (b *bottle) kill() {
	b.cmd.Process.Kill()
	err := <-b.done
	b.done <- err
}

// testDeps installs Debian packages the test needs when they are missing
// (scripts/testdeps.sh), or fails saying which.
func testDeps(t *testing.T, pkgs ...string) {
	t.Helper()
	out, err := exec.Command("bash", append([]string{"scripts/testdeps.sh"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("test needs %s: %v\n%s", strings.Join(pkgs, ", "), err, out)
	}
}

// TestBottleDirect checks the fixture itself: the app answers as it did
// under mod_wsgi, on TCP and on a unix socket.
func TestBottleDirect(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			b := startBottle(t, network)
			resp, err := b.client().Get("http://app/hello/%3Cb%3E")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := "<b>Hello &lt;b&gt;</b>!"; resp.StatusCode != 200 || string(body) != want {
				t.Errorf("GET /hello/%%3Cb%%3E from gunicorn = %d %q, want 200 %q", resp.StatusCode, body, want)
			}
		})
	}
}
