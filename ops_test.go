package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/httpsd/httpsd/certs"
)

// k8sSecret lays out certificate files the way Kubernetes mounts a Secret:
// dir/tls.crt -> ..data/tls.crt, ..data -> ..<version>, swapped atomically.
type k8sSecret struct {
	t   *testing.T
	dir string
	n   int
}

func (s *k8sSecret) publish(cert, key string) {
	s.t.Helper()
	s.n++
	version := fmt.Sprintf("..v%d", s.n)
	vdir := filepath.Join(s.dir, version)
	if err := os.Mkdir(vdir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	for src, name := range map[string]string{cert: "tls.crt", key: "tls.key"} {
		data, err := os.ReadFile(src)
		if err != nil {
			s.t.Fatal(err)
		}
		os.WriteFile(filepath.Join(vdir, name), data, 0o600)
		if s.n == 1 {
			os.Symlink(filepath.Join("..data", name), filepath.Join(s.dir, name))
		}
	}
	tmp := filepath.Join(s.dir, "..data_tmp")
	os.Symlink(version, tmp)
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		s.t.Fatal(err)
	}
}

// servedSerial returns the serial of the certificate served for sni.
func servedSerial(t *testing.T, addr, sni string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

func TestCertificateRotation(t *testing.T) {
	ca := newTestCA(t)
	year := time.Now().Add(365 * 24 * time.Hour)
	oldCert, oldKey := ca.leaf("old", year, "a.test")
	newCert, newKey := ca.leaf("new", year, "a.test")
	_, otherKey := ca.leaf("other", year, "a.test")
	secret := &k8sSecret{t: t, dir: t.TempDir()}
	secret.publish(oldCert, oldKey)
	cfg := filesConfig(t, "hosts: [a.test]\n", [2]string{filepath.Join(secret.dir, "tls.crt"), filepath.Join(secret.dir, "tls.key")})
	os.WriteFile(cfg, append(mustRead(t, cfg), "  reload_interval: 1s\n"...), 0o600)
	r := startRun(t, nil, "-config", cfg)
	oldSerial := servedSerial(t, r.https, "a.test")

	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	client := clientFor(roots, r.https)
	client.Transport.(*http.Transport).DisableKeepAlives = true // a handshake per request
	l := startLoad(client, "https://a.test/hello/rotate")
	ok, failed := &l.ok, &l.failed
	if !eventually(10*time.Second, func() bool { return ok.Load() >= 10 }) {
		t.Fatalf("only %d requests succeeded before the rotation", ok.Load())
	}
	// A broken pair (key of another certificate) keeps the old one.
	secret.publish(newCert, otherKey)
	waitLog(t, r, "certificate files changed but are not valid", 5*time.Second)
	if got := servedSerial(t, r.https, "a.test"); got != oldSerial {
		t.Errorf("after a broken replacement the server serves serial %s, want the old %s", got, oldSerial)
	}
	secret.publish(newCert, newKey)
	waitLog(t, r, "certificates reloaded", 5*time.Second)
	after := ok.Load()
	if !eventually(10*time.Second, func() bool { return ok.Load() >= after+10 }) {
		t.Errorf("only %d requests succeeded after the rotation", ok.Load()-after)
	}
	l.stop()
	t.Logf("rotation under load: %d requests succeeded, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 || ok.Load() < 10 {
		t.Errorf("during rotation %d requests failed and %d succeeded, want 0 failed", failed.Load(), ok.Load())
	}
	if got := servedSerial(t, r.https, "a.test"); got == oldSerial {
		t.Errorf("after rotation the server still serves the old certificate %s", got)
	}
	r.stop(t)
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// get fetches https://localhost/PATH as host (SNI localhost, Host header
// host) and returns the status and body.
func get(t *testing.T, client *http.Client, host, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "https://localhost"+path, nil)
	req.Host = host
	url := "https://" + host + path
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestReloadOnSIGHUP(t *testing.T) {
	vars, dataDir := dataDirEnv(t)
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	base := "listen: {https: 127.0.0.1:0, http: 127.0.0.1:0, admin: 127.0.0.1:0}\nlog: {level: debug, format: json}\n"
	os.WriteFile(cfg, []byte(base+"hosts: [localhost]\n"), 0o600)
	r := startRun(t, vars, "-config", cfg)
	client := clientFor(caPool(t, filepath.Join(dataDir, "ca.crt")), r.https)
	if code, _ := get(t, client, "b.localhost", "/hello/x"); code != 421 {
		t.Fatalf("GET https://b.localhost/ before reload = %d, want 421", code)
	}

	// A valid change: a new host (the local CA signs a new leaf), a rate
	// limit, and a key that needs a restart.
	os.WriteFile(cfg, []byte(strings.Replace(base, "format: json", "format: text", 1)+
		"hosts: [localhost, b.localhost]\nlimits: {rate_per_ip: 1, burst_per_ip: 3, max_header_bytes: 32768, max_requests_per_ip: 50}\n"), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(t, r, "config reloaded", 5*time.Second)
	client = clientFor(caPool(t, filepath.Join(dataDir, "ca.crt")), r.https)
	if code, body := get(t, client, "b.localhost", "/hello/x"); code != 200 {
		t.Errorf("GET https://b.localhost/ after reload = %d %q, want 200", code, body)
	}
	var restart []string
	for _, line := range strings.Split(r.logs.String(), "\n") {
		if strings.Contains(line, "this change needs a restart") {
			restart = append(restart, line)
		}
	}
	if got := strings.Join(restart, "\n"); !strings.Contains(got, `"key":"log.format`) || !strings.Contains(got, `"key":"limits.max_header_bytes`) {
		t.Errorf("restart warnings:\n%s\nwant one for log.format and one for limits.max_header_bytes", got)
	}
	if !strings.Contains(r.logs.String(), "limits.max_requests_per_ip applies now") {
		t.Errorf("no warning that the stream cap per connection keeps its running value when max_requests_per_ip changes")
	}
	codes := map[int]int{}
	for range 5 {
		code, _ := get(t, client, "localhost", "/hello/x")
		codes[code]++
	}
	if codes[429] == 0 {
		t.Errorf("5 quick requests after enabling rate_per_ip 1 burst 3 gave %v, want some 429", codes)
	}

	// An invalid change is refused whole.
	os.WriteFile(cfg, []byte(base+"hosts: [localhost]\nlimits: {rate_per_ip: lots}\n"), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	failed := waitLog(t, r, "config reload failed", 5*time.Second)
	if want := cfg + ":"; !strings.Contains(fmt.Sprint(failed["problem"]), want) || !strings.Contains(fmt.Sprint(failed["problem"]), "limits.rate_per_ip") {
		t.Errorf("reload failure = %v, want the file, line and key", failed)
	}
	if !eventually(5*time.Second, func() bool { code, _ := get(t, client, "b.localhost", "/hello/x"); return code == 200 }) {
		t.Errorf("after a refused reload GET https://b.localhost/ is not 200, want 200 once a token is back (the running config stays)")
	}

	metrics := scrape(t, r.admin)
	for _, want := range []string{`httpsd_config_reloads_total{result="success"} 1`, `httpsd_config_reloads_total{result="failure"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	r.stop(t)
}

// scrape returns the admin listener's /metrics.
func scrape(t *testing.T, admin string) string {
	t.Helper()
	_, body := adminGet(t, admin, "/metrics")
	return body
}

// adminGet GETs path from the admin listener and returns status and body.
func adminGet(t *testing.T, admin, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestAdminMetrics(t *testing.T) {
	vars, dataDir := dataDirEnv(t)
	r := startRun(t, vars, "-config", "testdata/e2e.yaml")
	client := clientFor(caPool(t, filepath.Join(dataDir, "ca.crt")), r.https)
	get(t, client, "localhost", "/hello/a")
	get(t, client, "localhost", "/hello/b")
	get(t, client, "wrong.example", "/hello/c")
	if c, err := tls.Dial("tcp", r.https, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil {
		c.Close()
	}
	wants := []string{
		`httpsd_http_requests_total{code="200",method="GET",proto="HTTP/2.0",route="/hello/:name"} 2`,
		`httpsd_http_requests_total{code="421",method="GET",proto="HTTP/2.0",route="unmatched"} 1`,
		`httpsd_rejections_total{reason="421"} 1`,
		`httpsd_http_request_duration_seconds_count{proto="HTTP/2.0",route="/hello/:name"} 2`,
		`httpsd_http_requests_in_flight 0`,
		`httpsd_tls_handshakes_total{group="X25519MLKEM768",resumed="false",version="TLS 1.3"}`,
		`httpsd_tls_handshake_failures_total{reason="version"} 1`,
		`httpsd_certificate_not_after_timestamp_seconds{name="localhost",source="self-signed"}`,
		`httpsd_config_reloads_total{result="success"} 0`,
		`go_goroutines`, `process_resident_memory_bytes`,
	}
	// A request is counted once its answer is out, which the client may
	// see first.
	var metrics string
	eventually(5*time.Second, func() bool {
		metrics = scrape(t, r.admin)
		for _, want := range wants {
			if !strings.Contains(metrics, want) {
				return false
			}
		}
		return true
	})
	for _, want := range wants {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/debug/pprof/": 404} {
		if code, _ := adminGet(t, r.admin, path); code != want {
			t.Errorf("GET admin %s = %d, want %d", path, code, want)
		}
	}
	r.stop(t)
}

// TestNotAfterByName checks that a name two certificates cover reports the
// one that expires first, once: Prometheus would keep only one of two
// series with the same labels, maybe the later one.
func TestNotAfterByName(t *testing.T) {
	ca := newTestCA(t)
	soon, late := time.Now().Add(48*time.Hour).Truncate(time.Second), time.Now().Add(90*24*time.Hour).Truncate(time.Second)
	pair := func(base string, notAfter time.Time, names ...string) *tls.Certificate {
		certFile, keyFile := ca.leaf(base, notAfter, names...)
		p, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return &p
	}
	lateAB, soonA := pair("late", late, "a.example", "b.example"), pair("soon", soon, "a.example")
	for name, set := range map[string][]*tls.Certificate{
		"late first": {lateAB, soonA},
		"soon first": {soonA, lateAB},
	} {
		t.Run(name, func(t *testing.T) {
			src := &certSource{}
			src.set.Store(certs.NewSet(set...))
			got := notAfterByName(src, "files")
			for name, want := range map[string]time.Time{"a.example": soon, "b.example": late} {
				if !got[name].Equal(want) {
					t.Errorf("notAfterByName()[%s] = %v, want %v", name, got[name], want)
				}
			}
			if len(got) != 2 {
				t.Errorf("notAfterByName() = %v, want 2 names", got)
			}
		})
	}
}
