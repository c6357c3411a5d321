//go:build unix

package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadyNamesUncoveredHosts reloads hosts that no certificate covers:
// /readyz says 503 and names each of them, until certificates cover them.
func TestReadyNamesUncoveredHosts(t *testing.T) {
	ca := newTestCA(t)
	year := time.Now().Add(365 * 24 * time.Hour)
	pair := func(base, name string) [2]string {
		cert, key := ca.leaf(base, year, name)
		return [2]string{cert, key}
	}
	a, b, w, wild := pair("a", "a.test"), pair("b", "b.test"), pair("w", "w.test"), pair("wild", "*.w.test")
	cfg := filesConfig(t, "hosts: [a.test]\n", a)
	r := startRun(t, nil, "-config", cfg)
	if code, body := adminGet(t, r.admin, "/readyz"); code != 200 {
		t.Fatalf("GET admin /readyz = %d %q, want 200", code, body)
	}

	steps := []struct {
		hosts   string
		pairs   [][2]string
		code    int
		want    []string // in the body
		notWant []string
	}{
		{"[a.test, b.test]", [][2]string{a}, 503, []string{"b.test"}, []string{"a.test"}},
		// A certificate for w.test does not cover *.w.test.
		{"[a.test, b.test, '*.w.test', w.test]", [][2]string{a, w}, 503, []string{"b.test", "*.w.test"}, []string{"a.test", " w.test"}},
		{"[a.test, b.test, '*.w.test', w.test]", [][2]string{a, b, w, wild}, 200, nil, nil},
	}
	for i, s := range steps {
		os.WriteFile(cfg, mustRead(t, filesConfig(t, "hosts: "+s.hosts+"\n", s.pairs...)), 0o600)
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		waitUntil(t, 5*time.Second, "config reloaded", func() bool {
			return strings.Count(r.logs.String(), `"msg":"config reloaded"`) > i
		})
		code, body := adminGet(t, r.admin, "/readyz")
		if code != s.code {
			t.Errorf("hosts %s: GET admin /readyz = %d %q, want %d", s.hosts, code, body, s.code)
		}
		for _, w := range s.want {
			if !strings.Contains(body, w) {
				t.Errorf("hosts %s: GET admin /readyz = %q, want it to name %s", s.hosts, body, w)
			}
		}
		for _, w := range s.notWant {
			if strings.Contains(body, w) {
				t.Errorf("hosts %s: GET admin /readyz = %q, want it not to name %s", s.hosts, body, strings.TrimSpace(w))
			}
		}
	}
	r.stop(t)
}
