package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/httpsd/httpsd/cluster"
)

// TestMain lets the test binary be httpsd itself: with HTTPSD_TEST_MAIN=1
// it runs main, so that tests can start real processes (under a lowered
// file limit, with stderr a pipe) without building the binary.
func TestMain(m *testing.M) {
	if os.Getenv("HTTPSD_TEST_MAIN") == "1" {
		main()
	}
	cluster.QuietRedisLog()
	os.Exit(m.Run())
}

// process is httpsd running as a child process.
type process struct {
	cmd                *exec.Cmd
	stderr             *os.File // where it logs, when not given a pipe
	https, http, admin string
	exited             chan error
}

// startProcess starts httpsd with args under sh, after the shell command
// setup (such as "ulimit -n 256"), with stderr going to stderr or, when
// nil, to a file the start-up line is read from.
func startProcess(t *testing.T, setup string, vars map[string]string, stderr *os.File, args ...string) *process {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := `exec "$0" "$@"`
	if setup != "" {
		script = setup + ` && ` + script
	}
	p := &process{exited: make(chan error, 1)}
	p.cmd = exec.Command("sh", append([]string{"-c", script, self}, args...)...)
	p.cmd.Env = append(os.Environ(), "HTTPSD_TEST_MAIN=1")
	for k, v := range vars {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	if stderr == nil {
		if p.stderr, err = os.Create(filepath.Join(t.TempDir(), "stderr")); err != nil {
			t.Fatal(err)
		}
		stderr = p.stderr
	}
	p.cmd.Stderr = stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		p.exited <- nil
	})
	return p
}

// waitServing waits for the start-up line in the process's log file.
func (p *process) waitServing(t *testing.T) {
	t.Helper()
	ok := eventually(20*time.Second, func() bool {
		data, _ := os.ReadFile(p.stderr.Name())
		for _, line := range strings.Split(string(data), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "httpsd serving" {
				p.https, _ = m["https"].(string)
				p.http, _ = m["http"].(string)
				p.admin, _ = m["admin"].(string)
				return true
			}
		}
		select {
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("httpsd exited before serving: %v\n%s", err, data)
		default:
		}
		return false
	})
	if !ok {
		data, _ := os.ReadFile(p.stderr.Name())
		t.Fatalf("no start-up line within 20s:\n%s", data)
	}
}

// log returns what the process has logged to its file.
func (p *process) log() string {
	data, _ := os.ReadFile(p.stderr.Name())
	return string(data)
}

// idleConn opens an HTTPS connection from the loopback address from, makes
// one HTTP/1.1 request on it and leaves it open, idle.
func idleConn(addr, from string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /hello/idle HTTP/1.1\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.SetDeadline(time.Time{})
	return c, nil
}

// TestFileLimit is the outside review's second attack at a small scale:
// with 256 file descriptors, addresses each under the per-address cap
// open more idle keep-alive connections than the process has descriptors.
// New HTTPS clients, the plain-HTTP redirect and the admin listener must
// all keep answering, and the process must never run out.
func TestFileLimit(t *testing.T) {
	vars, _ := dataDirEnv(t)
	p := startProcess(t, "ulimit -n 256", vars, nil, "-config", "testdata/e2e.yaml")
	p.waitServing(t)
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	opened := 0
	for i := range 300 {
		c, err := idleConn(p.https, fmt.Sprintf("127.0.0.%d", 10+i%10))
		if err != nil {
			continue // refused: counted below through the server's view
		}
		opened++
		conns = append(conns, c)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext(ctx, network, addr)
		},
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct {
		url    string
		status int
	}{
		{"https://" + p.https + "/hello/new", 200},
		{"http://" + p.http + "/hello/new", 308},
		{"http://" + p.admin + "/healthz", 200},
	} {
		resp, err := client.Get(tt.url)
		if err != nil {
			t.Errorf("GET %s with %d idle connections open: %v", tt.url, opened, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("GET %s = %d, want %d", tt.url, resp.StatusCode, tt.status)
		}
	}
	metrics := adminScrape(t, p.admin)
	t.Logf("fd limit 256: %d idle connections opened by clients; server: %s, %s", opened,
		metricLine(metrics, "process_open_fds"), metricLine(metrics, `httpsd_rejections_total{reason="max_conns"}`))
	if strings.Contains(p.log(), "too many open files") {
		t.Errorf("the server ran out of file descriptors:\n%s", p.log())
	}
}

// metricLine returns the line of a /metrics text that starts with name.
func metricLine(metrics, name string) string {
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	return name + " (none)"
}

// adminScrape GETs /metrics from an admin listener.
func adminScrape(t *testing.T, admin string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestStuckLogOutput is the outside review's third finding: stderr a pipe
// that nobody reads. Requests keep being served (log lines are dropped and
// counted), and SIGTERM stops the process within the shutdown timeout.
func TestStuckLogOutput(t *testing.T) {
	vars, _ := dataDirEnv(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The start-up line is read from the pipe; after it, nobody reads.
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfg, append(mustRead(t, "testdata/e2e.yaml"), "\n  access: true\n"...), 0o600)
	p := startProcess(t, "", vars, w, "-config", cfg)
	w.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	var m map[string]any
	if err != nil || json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "httpsd serving" {
		t.Fatalf("first log line = %q, %v; want the start-up line", line, err)
	}
	https, admin := m["https"].(string), m["admin"].(string)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for range 4 {
		wg.Go(func() {
			for range 250 {
				resp, err := client.Get("https://" + https + "/hello/" + strings.Repeat("x", 8000))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if failed > 0 {
		t.Errorf("%d of 1000 requests failed with the log output stuck, want 0", failed)
	}
	metrics := adminScrape(t, admin)
	t.Logf("1000 requests (8 MB of access log) with stderr a pipe nobody reads: %s", metricLine(metrics, "httpsd_log_dropped_total"))
	if line := metricLine(metrics, "httpsd_log_dropped_total"); strings.HasSuffix(line, " 0") || strings.HasSuffix(line, "(none)") {
		t.Errorf("%s, want the dropped lines counted", line)
	}
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.exited <- err
		t.Logf("SIGTERM to exit: %v (%v)", time.Since(start), err)
		if err != nil {
			rest, _ := io.ReadAll(r) // the pipe's last 64 KiB
			t.Errorf("exit after SIGTERM: %v, want 0; the log ends:\n%s", err, rest[max(0, len(rest)-2000):])
		}
	case <-time.After(15 * time.Second): // shutdown_timeout is 5s
		t.Errorf("still running 15s after SIGTERM with the log output stuck")
	}
}

// TestSIGHUPDuringStartup: a SIGHUP that arrives while httpsd starts is
// taken as a reload once it serves, instead of ending the process.
func TestSIGHUPDuringStartup(t *testing.T) {
	safety := make(chan os.Signal, 1) // should run miss it, the test binary must not die
	signal.Notify(safety, syscall.SIGHUP)
	defer signal.Stop(safety)
	vars, _ := dataDirEnv(t)
	vars["HTTPSD_CONFIG"] = "testdata/e2e.yaml"
	var once sync.Once
	lookup := func(key string) (string, bool) {
		once.Do(func() { // run is starting: it reads its environment
			syscall.Kill(os.Getpid(), syscall.SIGHUP)
			<-safety // delivered
		})
		v, ok := vars[key]
		return v, ok
	}
	logs := &syncLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"httpsd"}, lookup, io.Discard, logs) }()
	defer func() { cancel(); <-done }()
	if !eventually(10*time.Second, func() bool { return logs.find("config reloaded") != nil }) {
		t.Errorf("no reload after a SIGHUP sent during start-up:\n%s", logs)
	}
}
