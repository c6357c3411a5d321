package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
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

	"github.com/httpsd/httpsd/internal/redistest"
)

// startHAProxy runs HAProxy with deploy/haproxy.cfg (installing the
// haproxy package when missing) in front of the three replicas, and
// returns the address clients connect to; it stops when the test ends.
func startHAProxy(t *testing.T, replicas [3]string) string {
	t.Helper()
	testDeps(t, "haproxy")
	bind := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	cmd := exec.Command("haproxy", "-db", "-f", "deploy/haproxy.cfg")
	cmd.Env = append(os.Environ(), "HTTPSD_LB_BIND="+bind,
		"HTTPSD_REPLICA1="+replicas[0], "HTTPSD_REPLICA2="+replicas[1], "HTTPSD_REPLICA3="+replicas[2])
	out, err := os.CreateTemp(t.TempDir(), "haproxy")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	if !eventually(10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", bind, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		log, _ := os.ReadFile(out.Name())
		t.Fatalf("haproxy does not listen on %s:\n%s", bind, log)
	}
	return bind
}

// replicaConfig writes the config of one of several replicas behind
// HAProxy on loopback: the same certificate files, PROXY protocol from
// HAProxy's address, extra YAML.
func replicaConfig(t *testing.T, cert, key, extra string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	text := fmt.Sprintf(`hosts: [localhost]
listen: {https: 127.0.0.1:0, http: "", admin: 127.0.0.1:0, proxy_protocol_from: [127.0.0.1]}
data_dir: %s
log: {format: json, level: debug}
tls:
  source: files
  certificates: [{cert: %s, key: %s}]
%s`, filepath.Join(t.TempDir(), "data"), cert, key, extra)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// clientVia returns a client that reaches addr from the loopback address
// from, trusting roots, opening a new connection for every request.
func clientVia(roots *x509.CertPool, addr, from string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext(ctx, network, addr)
		},
	}}
}

// TestHAProxy puts three replicas sharing ticket keys through Redis behind
// a real HAProxy in TCP mode with send-proxy-v2 (deploy/haproxy.cfg):
// requests succeed, the replicas see the clients' addresses, not
// HAProxy's, in their access logs, the per-IP limit applies per real
// client, and a TLS session resumes on whichever replica HAProxy picks.
func TestHAProxy(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.leaf("localhost", time.Now().Add(24*time.Hour), "localhost")
	redis := redistest.Start(t, "scripts/testdeps.sh")
	vars := map[string]string{"HTTPSD_TLS_ACME_STORAGE": redis.URL(0), "HTTPSD_TLS_ACME_STORAGE_PASSWORD": redis.Password,
		"HTTPSD_TLS_SESSION_TICKETS_SHARED": "true", "HTTPSD_CLUSTER_SECRET": strings.Repeat("3c", 32)}
	var replicas [3]*running
	var addrs [3]string
	for i := range replicas {
		// One request per client per replica: the limits are per replica.
		replicas[i] = startRun(t, vars, "-config", replicaConfig(t, cert, key, "limits: {rate_per_ip: 0.01, burst_per_ip: 1}\n"))
		addrs[i] = replicas[i].https
	}
	for _, r := range replicas {
		waitLog(t, r, "cluster: session ticket keys applied", 10*time.Second)
	}
	lb := startHAProxy(t, addrs)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	get := func(from string) int {
		resp, err := clientVia(roots, lb, from).Get("https://localhost/hello/lb")
		if err != nil {
			t.Fatalf("GET through HAProxy from %s: %v", from, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	codes := map[int]int{}
	for range 6 { // round robin: twice per replica
		codes[get("127.0.0.2")]++
	}
	if codes[200] != 3 || codes[429] != 3 {
		t.Errorf("6 requests from 127.0.0.2 through HAProxy to 3 replicas allowing 1 each: %v, want 3 × 200 and 3 × 429", codes)
	}
	// Another client is its own: had the replicas counted HAProxy's
	// address, it would be refused too.
	if code := get("127.0.0.3"); code != 200 {
		t.Errorf("GET from 127.0.0.3 after 127.0.0.2 used its share = %d, want 200", code)
	}
	for i, r := range replicas {
		waitUntil(t, 5*time.Second, fmt.Sprintf("replica %d's access log naming 127.0.0.2", i+1), func() bool {
			return strings.Contains(r.logs.String(), `"remote":"127.0.0.2:`)
		})
		for _, line := range strings.Split(r.logs.String(), "\n") {
			if strings.Contains(line, `"msg":"request"`) && !strings.Contains(line, `"remote":"127.0.0.2:`) && !strings.Contains(line, `"remote":"127.0.0.3:`) {
				t.Errorf("replica %d logged a request from another address than the clients': %s", i+1, line)
			}
		}
	}

	// Three connections with one session cache: HAProxy sends them to
	// each replica in turn, and the second and third resume the session
	// the first replica began.
	conf := &tls.Config{RootCAs: roots, ServerName: "localhost", ClientSessionCache: tls.NewLRUClientSessionCache(4), NextProtos: []string{"http/1.1"}}
	var resumed []bool
	for range 3 {
		c, err := tls.Dial("tcp", lb, conf)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		io.ReadAll(c) // TLS 1.3 sends the ticket after the handshake
		resumed = append(resumed, c.ConnectionState().DidResume)
		c.Close()
	}
	if fmt.Sprint(resumed) != "[false true true]" {
		t.Errorf("DidResume of 3 connections through HAProxy = %v, want [false true true]: a session resumes on another replica", resumed)
	}
	on := 0 // replicas that resumed a session
	for _, r := range replicas {
		if strings.Contains(scrape(t, r.admin), `resumed="true"`) {
			on++
		}
	}
	if on != 2 {
		t.Errorf("%d replicas resumed a session, want 2 (HAProxy sends each connection to the next replica)", on)
	}
}
