package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Client returns an HTTP/3 client that trusts only roots and sends
// every request to the UDP address addr, whatever the URL's host.
func h3Client(t *testing.T, roots *x509.CertPool, addr string) *http.Client {
	t.Helper()
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		Dial: func(ctx context.Context, _ string, tlsConf *tls.Config, conf *quic.Config) (*quic.Conn, error) {
			return quic.DialAddrEarly(ctx, addr, tlsConf, conf)
		},
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// h3Get GETs path from host over HTTP/3 with client and returns the
// status, body and protocol.
func h3Get(t *testing.T, client *http.Client, host, path string) (int, string, string) {
	t.Helper()
	resp, err := client.Get("https://" + host + path)
	if err != nil {
		t.Fatalf("GET https://%s%s over HTTP/3: %v", host, path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body), resp.Proto
}

// TestHTTP3EndToEnd: run serves HTTP/3 on the HTTPS address with the local
// CA, advertises it to HTTP/2 clients, logs and counts it, applies a
// SIGHUP to it, and stops cleanly; listen.http3 false turns it off.
func TestHTTP3EndToEnd(t *testing.T) {
	vars, dataDir := dataDirEnv(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	base := "listen: {https: 127.0.0.1:0, http: 127.0.0.1:0, admin: 127.0.0.1:0}\nlog: {level: debug, format: json}\nlimits: {shutdown_timeout: 5s}\n"
	os.WriteFile(cfg, []byte(base+"hosts: [localhost]\n"), 0o600)
	r := startRun(t, vars, "-config", cfg)
	if h3, _ := r.logs.find("httpsd serving")["http3"].(string); h3 != r.https {
		t.Errorf("start-up line http3 = %q, want the HTTPS address %s", h3, r.https)
	}
	roots := caPool(t, filepath.Join(dataDir, "ca.crt"))
	h3 := h3Client(t, roots, r.https)
	if code, body, proto := h3Get(t, h3, "localhost", "/hello/world"); code != 200 || body != "<b>Hello world</b>!" || proto != "HTTP/3.0" {
		t.Errorf("GET /hello/world = %d %q over %s, want 200 over HTTP/3.0", code, body, proto)
	}
	if !eventually(5*time.Second, func() bool {
		return strings.Contains(r.logs.String(), `"path":"/hello/world","status":200`) && strings.Contains(r.logs.String(), `"proto":"HTTP/3.0"`)
	}) {
		t.Errorf("no access log line with proto HTTP/3.0:\n%s", r.logs)
	}
	resp, err := clientFor(roots, r.https).Get("https://localhost:" + port(r.https) + "/hello/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := `h3=":` + port(r.https) + `"; ma=2592000`; resp.Header.Get("Alt-Svc") != want || resp.Proto != "HTTP/2.0" {
		t.Errorf("HTTP/2 answer Alt-Svc = %q over %s, want %q", resp.Header.Get("Alt-Svc"), resp.Proto, want)
	}
	if metrics := scrape(t, r.admin); !strings.Contains(metrics, `httpsd_http_requests_total{code="200",method="GET",proto="HTTP/3.0",route="/hello/:name"} 1`) {
		t.Errorf("/metrics lacks the HTTP/3 request:\n%s", metricLine(metrics, "httpsd_http_requests_total"))
	}

	req, _ := http.NewRequest("GET", "https://localhost/hello/x", nil)
	req.Host = "b.localhost" // SNI localhost, which the certificate covers
	if resp, err := h3.Do(req); err != nil || resp.StatusCode != 421 {
		t.Errorf("GET with Host b.localhost over HTTP/3 before reload = %v, %v; want 421", resp, err)
	} else {
		resp.Body.Close()
	}
	os.WriteFile(cfg, []byte(base+"hosts: [localhost, b.localhost]\n"), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(t, r, "config reloaded", 5*time.Second)
	h3 = h3Client(t, caPool(t, filepath.Join(dataDir, "ca.crt")), r.https) // the new leaf names b.localhost
	if code, body, _ := h3Get(t, h3, "b.localhost", "/hello/x"); code != 200 {
		t.Errorf("GET https://b.localhost/ over HTTP/3 after reload = %d %q, want 200", code, body)
	}
	r.stop(t)

	t.Run("listen.http3 false", func(t *testing.T) {
		vars, dataDir := dataDirEnv(t)
		vars["HTTPSD_LISTEN_HTTP3"] = "false"
		r := startRun(t, vars, "-config", "testdata/e2e.yaml")
		if h3, _ := r.logs.find("httpsd serving")["http3"].(string); h3 != "off" {
			t.Errorf("start-up line http3 = %q, want off", h3)
		}
		resp, err := clientFor(caPool(t, filepath.Join(dataDir, "ca.crt")), r.https).Get("https://localhost:" + port(r.https) + "/hello/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Alt-Svc"); got != "" {
			t.Errorf("Alt-Svc = %q with listen.http3 false, want none", got)
		}
		pc, err := net.ListenPacket("udp", r.https)
		if err != nil {
			t.Errorf("the UDP port of %s is in use with listen.http3 false: %v", r.https, err)
		} else {
			pc.Close()
		}
		r.stop(t)
	})
}
