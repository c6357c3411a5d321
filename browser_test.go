//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBrowserHTTP3: a real browser, headless Chromium trusting the local
// CA through an NSS database, loads /hello/x and, forced to QUIC for the
// origin, is served over HTTP/3.
func TestBrowserHTTP3(t *testing.T) {
	testDeps(t, "chromium", "libnss3-tools")
	vars, dataDir := dataDirEnv(t)
	r := startRun(t, vars, "-config", "testdata/e2e.yaml")
	origin := "localhost:" + port(r.https)

	// Chromium on Linux trusts the roots in $HOME/.pki/nssdb.
	home := t.TempDir()
	nssdb := "sql:" + filepath.Join(home, ".pki", "nssdb")
	os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700)
	for _, args := range [][]string{
		{"-N", "-d", nssdb, "--empty-password"},
		{"-A", "-d", nssdb, "-n", "httpsd local CA", "-t", "C,,", "-i", filepath.Join(dataDir, "ca.crt")},
	} {
		if out, err := exec.Command("certutil", args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(home, "profile"), "--origin-to-force-quic-on="+origin,
		// httpsd listens on 127.0.0.1; forced QUIC would try ::1 first.
		"--host-resolver-rules=MAP localhost 127.0.0.1",
		"--dump-dom", "https://"+origin+"/hello/x")
	cmd.Env = append(os.Environ(), "HOME="+home)
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v (after %v)\n%s%s", err, time.Since(start).Round(time.Millisecond), out, stderr.String())
	}
	t.Logf("chromium loaded the page in %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(string(out), "<b>Hello x</b>!") {
		t.Errorf("chromium's DOM lacks <b>Hello x</b>!:\n%s\n%s", out, stderr.String())
	}
	if !eventually(5*time.Second, func() bool {
		for _, line := range strings.Split(r.logs.String(), "\n") {
			if strings.Contains(line, `"path":"/hello/x"`) && strings.Contains(line, `"proto":"HTTP/3.0"`) {
				return true
			}
		}
		return false
	}) {
		t.Errorf("no access log line for /hello/x over HTTP/3.0:\n%s", r.logs)
	}
	r.stop(t)
}
