package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chainFiles holds certificate chains for a.test signed by an
// intermediate, whole and broken.
type chainFiles struct {
	inter                   *testCA
	good, truncated, extra  string // leaf + intermediate; leaf + half of it; leaf + intermediate + an unrelated CA
	goodKey, truncKey, xKey string
}

func newChainFiles(t *testing.T) *chainFiles {
	t.Helper()
	root := newTestCA(t)
	inter := newCA(t, "test intermediate", root)
	other := newCA(t, "other CA", nil)
	interPEM, otherPEM := mustRead(t, inter.file), mustRead(t, other.file)
	year := time.Now().Add(365 * 24 * time.Hour)
	chain := func(base string, extra ...[]byte) (string, string) {
		cert, key := inter.leaf(base, year, "a.test")
		data := mustRead(t, cert)
		for _, e := range extra {
			data = append(data, e...)
		}
		if err := os.WriteFile(cert, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return cert, key
	}
	c := &chainFiles{inter: inter}
	c.good, c.goodKey = chain("good", interPEM)
	c.truncated, c.truncKey = chain("truncated", interPEM[:len(interPEM)/2])
	c.extra, c.xKey = chain("extra", interPEM, otherPEM)
	return c
}

func TestChainRefusedAtStart(t *testing.T) {
	c := newChainFiles(t)
	tests := []struct {
		name      string
		cert, key string
		cmd       string
		code      int
		want      string // after "certs: CERT: "
	}{
		{"check good", c.good, c.goodKey, "check", 0, ""},
		{"check truncated", c.truncated, c.truncKey, "check", 2, "PEM block 2 is truncated or malformed"},
		{"check extra", c.extra, c.xKey, "check", 2, "certificate 3 (CN=other CA) does not sign certificate 2 (CN=test intermediate)"},
		{"serve truncated", c.truncated, c.truncKey, "serve", 2, "PEM block 2 is truncated or malformed"},
		{"serve extra", c.extra, c.xKey, "serve", 2, "certificate 3 (CN=other CA) does not sign"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, nil, tt.cmd, "-config", filesConfig(t, "", [2]string{tt.cert, tt.key}))
			if code != tt.code {
				t.Errorf("httpsd %s = exit %d, want %d\nstdout: %s\nstderr: %s", tt.cmd, code, tt.code, stdout, stderr)
			}
			if want := "certs: " + tt.cert + ": " + tt.want; tt.want != "" && !strings.Contains(stderr, want) {
				t.Errorf("httpsd %s output lacks %q:\n%s", tt.cmd, want, stderr)
			}
		})
	}
}

// TestChainRefusedOnReload replaces a served chain with broken ones: the
// old certificate stays in service and the log says what is wrong.
func TestChainRefusedOnReload(t *testing.T) {
	c := newChainFiles(t)
	secret := &k8sSecret{t: t, dir: t.TempDir()}
	secret.publish(c.good, c.goodKey)
	certFile := filepath.Join(secret.dir, "tls.crt")
	cfg := filesConfig(t, "hosts: [a.test]\n", [2]string{certFile, filepath.Join(secret.dir, "tls.key")})
	os.WriteFile(cfg, append(mustRead(t, cfg), "  reload_interval: 1s\n"...), 0o600)
	r := startRun(t, nil, "-config", cfg)
	oldSerial := servedSerial(t, r.https, "a.test")

	const rejected = "certificate files changed but are not valid"
	for i, tt := range []struct{ cert, key, want string }{
		{c.truncated, c.truncKey, "PEM block 2 is truncated or malformed"},
		{c.extra, c.xKey, "certificate 3 (CN=other CA) does not sign certificate 2 (CN=test intermediate)"},
	} {
		secret.publish(tt.cert, tt.key)
		want := certFile + ": " + tt.want
		waitUntil(t, 5*time.Second, "a log line "+rejected+" with "+want, func() bool {
			return strings.Count(r.logs.String(), rejected) > i && strings.Contains(r.logs.String(), want)
		})
		if got := servedSerial(t, r.https, "a.test"); got != oldSerial {
			t.Errorf("after a broken chain (%s) the server serves serial %s, want the old %s", tt.want, got, oldSerial)
		}
	}
	if strings.Contains(r.logs.String(), "certificates reloaded") {
		t.Errorf("a broken chain was loaded:\n%s", r.logs)
	}

	newCert, newKey := c.inter.leaf("new", time.Now().Add(24*time.Hour), "a.test")
	os.WriteFile(newCert, append(mustRead(t, newCert), mustRead(t, c.inter.file)...), 0o644)
	secret.publish(newCert, newKey)
	waitLog(t, r, "certificates reloaded", 5*time.Second)
	if got := servedSerial(t, r.https, "a.test"); got == oldSerial {
		t.Errorf("after a good chain the server still serves the old serial %s", got)
	}
	r.stop(t)
}
