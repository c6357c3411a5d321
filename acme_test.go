package main

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const acmeHost = "test.example"

// acmeSetup is httpsd configured for ACME against a Pebble.
type acmeSetup struct {
	config    string // config file
	dataDir   string
	httpsPort int
	httpPort  int
}

// newACMESetup picks free loopback ports and a data_dir for httpsd; write
// then points it at a CA.
func newACMESetup(t *testing.T) *acmeSetup {
	t.Helper()
	return &acmeSetup{dataDir: filepath.Join(t.TempDir(), "data"), httpsPort: freePort(t), httpPort: freePort(t),
		config: filepath.Join(t.TempDir(), "config.yaml")}
}

// write writes the config: hosts [test.example], ACME from directory,
// trusting apiRoots (when not "") for its HTTPS.
func (s *acmeSetup) write(t *testing.T, directory, apiRoots string, extra ...string) *acmeSetup {
	t.Helper()
	cfg := fmt.Sprintf(`hosts: [%s]
listen: {https: "127.0.0.1:%d", http: "127.0.0.1:%d", admin: "127.0.0.1:0"}
data_dir: %s
log: {format: json, level: debug}
tls:
  source: acme
  acme:
    email: admin@%s
    directory: %s
`, acmeHost, s.httpsPort, s.httpPort, s.dataDir, acmeHost, directory)
	if apiRoots != "" {
		cfg += "    ca_roots: " + apiRoots + "\n"
	}
	for _, line := range extra {
		cfg += "    " + line + "\n"
	}
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// waitLog waits up to timeout for a JSON log line whose msg starts with msg.
func waitLog(t *testing.T, r *running, msg string, timeout time.Duration) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := r.logs.find(msg); m != nil {
			return m
		}
	}
	t.Fatalf("no log line %q within %v:\n%s", msg, timeout, r.logs)
	return nil
}

// getHello fetches /hello/world from the server as acmeHost, verifying the
// chain against root, and returns the leaf served.
func getHello(t *testing.T, addr string, root *x509.Certificate, conf *tls.Config) *x509.Certificate {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(root)
	client := clientFor(roots, addr)
	if conf != nil {
		conf = conf.Clone()
		conf.RootCAs = roots
		client.Transport.(*http.Transport).TLSClientConfig = conf
	}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + acmeHost + "/hello/world")
	if err != nil {
		t.Fatalf("GET https://%s/hello/world: %v", acmeHost, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "<b>Hello world</b>!" {
		t.Errorf("GET https://%s/hello/world = %d %q, want 200", acmeHost, resp.StatusCode, body)
	}
	return resp.TLS.PeerCertificates[0]
}

func TestACMETLSALPN01(t *testing.T) {
	start := time.Now()
	// Ports first: Pebble's validation must connect to httpsd's HTTPS port.
	s := newACMESetup(t)
	p := startPebble(t, freePort(t), s.httpsPort, 0)
	s.write(t, p.directory, p.apiRoots)
	r := startRun(t, nil, "-config", s.config)
	waitLog(t, r, "acme: certificate ready", 30*time.Second)
	t.Logf("issued through tls-alpn-01 %v after start", time.Since(start).Round(time.Millisecond))
	issued := waitLog(t, r, "acme: certificate issued", time.Second)
	if issued["key"] != "ECDSA P-256" || issued["host"] != acmeHost {
		t.Errorf("issued log line = %v, want host %s with key ECDSA P-256", issued, acmeHost)
	}
	https := "127.0.0.1:" + strconv.Itoa(s.httpsPort)
	leaf := getHello(t, https, p.root, nil)
	t.Run("HTTP/3 with the same certificate", func(t *testing.T) {
		code, body, proto := h3Get(t, h3Client(t, rootPool(p.root), https), acmeHost, "/hello/world")
		if code != 200 || body != "<b>Hello world</b>!" || proto != "HTTP/3.0" {
			t.Errorf("GET https://%s/hello/world = %d %q over %s, want 200 over HTTP/3.0", acmeHost, code, body, proto)
		}
	})
	if code, body := adminGet(t, r.admin, "/readyz"); code != 200 {
		t.Errorf("GET /readyz with a certificate = %d %q, want 200", code, body)
	}

	t.Run("TLS 1.3-only client gets ECDSA", func(t *testing.T) {
		for _, conf := range []*tls.Config{
			{MinVersion: tls.VersionTLS13},
			{MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519}},
		} {
			got := getHello(t, https, p.root, conf)
			if _, ok := got.PublicKey.(*ecdsa.PublicKey); !ok {
				t.Errorf("TLS 1.3-only client (groups %v) got a %T certificate, want ECDSA", conf.CurvePreferences, got.PublicKey)
			}
		}
		if _, err := os.Stat(filepath.Join(s.dataDir, "acme", acmeHost+"+rsa")); err == nil {
			t.Errorf("an RSA certificate was issued; TLS 1.3 clients should get ECDSA")
		}
	})

	t.Run("RSA-only client gets RSA", func(t *testing.T) {
		got := getHello(t, https, p.root, &tls.Config{MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}})
		if _, ok := got.PublicKey.(*rsa.PublicKey); !ok {
			t.Errorf("TLS 1.2 client with only ECDHE-RSA suites got a %T certificate, want RSA", got.PublicKey)
		}
		if _, err := os.Stat(filepath.Join(s.dataDir, "acme", acmeHost+"+rsa")); err != nil {
			t.Errorf("RSA certificate not cached: %v", err)
		}
		issued := func() bool {
			for _, line := range strings.Split(r.logs.String(), "\n") {
				if strings.Contains(line, `"msg":"acme: certificate issued"`) && strings.Contains(line, `"key":"RSA-2048"`) {
					return true
				}
			}
			return false
		}
		if !eventually(5*time.Second, issued) {
			t.Errorf("no issued log line for the RSA certificate:\n%s", r.logs)
		}
	})

	t.Run("other names never reach the CA", func(t *testing.T) {
		before := p.requests.Load()
		_, err := tls.Dial("tcp", https, &tls.Config{ServerName: "other.example", InsecureSkipVerify: true})
		if err == nil {
			t.Error("handshake for other.example succeeded, want refused")
		}
		// Certificates are asked for during the handshake: had it reached
		// the CA, the requests would be counted by now.
		if n := p.requests.Load() - before; n != 0 {
			t.Errorf("a handshake for other.example made %d requests to the CA, want 0", n)
		}
	})

	t.Run("curl", func(t *testing.T) {
		out, err := exec.Command("curl", "-sS", "--max-time", "10", "--cacert", p.rootFile,
			"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", acmeHost, s.httpsPort),
			fmt.Sprintf("https://%s:%d/hello/world", acmeHost, s.httpsPort)).CombinedOutput()
		if err != nil || string(out) != "<b>Hello world</b>!" {
			t.Errorf("curl = %q, %v; want <b>Hello world</b>!", out, err)
		}
	})

	t.Run("certs command", func(t *testing.T) {
		code, out, errOut := runCmd(t, nil, "certs", "-config", s.config)
		for _, want := range []string{"acme", acmeHost, "ECDSA P-256", "RSA-2048", "Pebble Intermediate", time.Now().UTC().Format(time.DateOnly),
			filepath.Join(s.dataDir, "acme", acmeHost)} {
			if !strings.Contains(out, want) {
				t.Errorf("httpsd certs output lacks %q:\n%s", want, out)
			}
		}
		if code != 0 {
			t.Errorf("httpsd certs = exit %d, want 0: %s", code, errOut)
		}
	})

	if m := r.logs.find("acme: renewal request failed"); m != nil {
		t.Errorf("a renewal failure was logged while nothing renewed: %v", m)
	}

	t.Run("restart with the CA down serves the cached certificate", func(t *testing.T) {
		r.stop(t)
		p.stop()
		r2 := startRun(t, nil, "-config", s.config)
		waitLog(t, r2, "acme: certificate ready", 10*time.Second)
		again := getHello(t, https, p.root, nil)
		if !again.Equal(leaf) {
			t.Errorf("after restart served serial %v, want the cached %v", again.SerialNumber, leaf.SerialNumber)
		}
		if m := r2.logs.find("acme: certificate failed"); m != nil {
			t.Errorf("restart with a cached certificate contacted the CA: %v", m)
		}
		r2.stop(t)
	})
}

func TestACMEHTTP01(t *testing.T) {
	s := newACMESetup(t)
	// tls-alpn-01 cannot reach us, so autocert falls back to http-01.
	p := startPebble(t, s.httpPort, freePort(t), 0)
	s.write(t, p.directory, p.apiRoots)
	r := startRun(t, nil, "-config", s.config)
	waitLog(t, r, "acme: certificate ready", 30*time.Second)
	failed := r.logs.find("acme: challenge failed")
	if failed == nil || failed["challenge"] != "tls-alpn-01" || !strings.Contains(fmt.Sprint(failed["problem"]), "Failed to connect to 127.0.0.1") {
		t.Errorf("challenge failure log = %v, want tls-alpn-01 with the CA's problem detail", failed)
	}
	getHello(t, "127.0.0.1:"+strconv.Itoa(s.httpsPort), p.root, nil)

	// Everything else on the HTTP port still redirects, Host port or not.
	for _, host := range []string{acmeHost, acmeHost + ":" + strconv.Itoa(s.httpPort)} {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+strconv.Itoa(s.httpPort)+"/hello/x?y=1", nil)
		req.Host = host
		resp, err := clientFor(nil, "127.0.0.1:"+strconv.Itoa(s.httpPort)).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := fmt.Sprintf("https://%s:%d/hello/x?y=1", acmeHost, s.httpsPort)
		if resp.StatusCode != 308 || resp.Header.Get("Location") != want {
			t.Errorf("GET http://%s/hello/x = %d %q, want 308 %q", host, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	r.stop(t)
}

func TestACMEUnreachable(t *testing.T) {
	dead := fmt.Sprintf("https://127.0.0.1:%d/dir", freePort(t))
	s := newACMESetup(t).write(t, dead, "")
	r := startRun(t, nil, "-config", s.config)
	failed := waitLog(t, r, "acme: certificate failed", 10*time.Second)
	if !strings.Contains(fmt.Sprint(failed["err"]), "connection refused") || failed["next_attempt_in"] != "1m0s" || failed["host"] != acmeHost {
		t.Errorf("failure log = %v, want host, connection refused and next_attempt_in 1m0s", failed)
	}
	start := time.Now()
	_, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.httpsPort), &tls.Config{ServerName: acmeHost, InsecureSkipVerify: true})
	if err == nil {
		t.Error("handshake without a certificate succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("handshake during backoff took %v, want it to fail fast", d)
	}
	waitLog(t, r, "acme: handshake refused, no certificate yet", 2*time.Second)
	if code, body := adminGet(t, r.admin, "/readyz"); code != 503 || !strings.Contains(body, "no certificate for test.example yet") {
		t.Errorf("GET /readyz without a certificate = %d %q, want 503 naming the host", code, body)
	}
	metrics := scrape(t, r.admin)
	if !strings.Contains(metrics, `httpsd_acme_failures_total{host="test.example"} 1`) || !strings.Contains(metrics, `httpsd_acme_last_failure_timestamp_seconds{host="test.example"}`) {
		t.Errorf("/metrics lacks the ACME failure series:\n%s", metrics)
	}
	r.stop(t)
}

func TestCheckOnline(t *testing.T) {
	p := startPebble(t, freePort(t), freePort(t), 0)
	good := newACMESetup(t).write(t, p.directory, p.apiRoots)
	code, out, errOut := runCmd(t, nil, "check", "-online", "-resolver", p.dns, "-config", good.config)
	for _, want := range []string{"ok   acme directory " + p.directory, "ok   data_dir", "ok   host test.example: [127.0.0.1]; note: only non-public"} {
		if !strings.Contains(out, want) {
			t.Errorf("check -online output lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Errorf("check -online with a reachable CA = exit %d, want 0\n%s%s", code, out, errOut)
	}

	tests := []struct {
		name      string
		directory string
		roots     string
		resolver  string
		want      string
	}{
		{"CA down", fmt.Sprintf("https://127.0.0.1:%d/dir", freePort(t)), p.apiRoots, p.dns, "connection refused; hint: nothing listens there"},
		{"CA not trusted", p.directory, "", p.dns, "hint: the directory's TLS certificate is not trusted"},
		{"no DNS", p.directory, p.apiRoots, fmt.Sprintf("127.0.0.1:%d", freePort(t)), "FAIL host test.example: no A/AAAA record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newACMESetup(t).write(t, tt.directory, tt.roots)
			code, out, errOut := runCmd(t, nil, "check", "-online", "-resolver", tt.resolver, "-config", s.config)
			if code != 1 || !strings.Contains(out, tt.want) || !strings.Contains(errOut, "would block issuance") {
				t.Errorf("check -online = exit %d\n%s%s\nwant exit 1 and %q", code, out, errOut, tt.want)
			}
		})
	}
}

// TestACMERenewal has Pebble issue 12-second certificates, renewed 10
// seconds before they end: autocert renews them, httpsd logs it and serves
// the new one; with the CA gone, the failure is logged and the current
// certificate stays in service.
func TestACMERenewal(t *testing.T) {
	s := newACMESetup(t)
	p := startPebble(t, freePort(t), s.httpsPort, 12)
	s.write(t, p.directory, p.apiRoots, "renew_before: 10s")
	r := startRun(t, nil, "-config", s.config)
	waitLog(t, r, "acme: certificate ready", 30*time.Second)
	https := "127.0.0.1:" + strconv.Itoa(s.httpsPort)
	first := getHello(t, https, p.root, nil)
	renewed := waitLog(t, r, "acme: certificate renewed", 10*time.Second)
	if renewed["host"] != acmeHost {
		t.Errorf("renewed log line = %v, want host %s", renewed, acmeHost)
	}
	second := getHello(t, https, p.root, nil)
	if second.Equal(first) {
		t.Errorf("after renewal the server still serves the first certificate (serial %v)", first.SerialNumber)
	}
	p.stop()
	failed := waitLog(t, r, "acme: renewal request failed", 10*time.Second)
	if !strings.Contains(fmt.Sprint(failed["problem"]), "connection refused") {
		t.Errorf("renewal failure log = %v, want the CA's connection error", failed)
	}
	conn, err := tls.Dial("tcp", https, &tls.Config{ServerName: acmeHost, RootCAs: rootPool(p.root)})
	if err != nil {
		t.Fatalf("handshake after a failed renewal: %v, want the current certificate still served", err)
	}
	conn.Close()
	r.stop(t)
}

func rootPool(root *x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return pool
}
