//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/httpsd/httpsd/certs"
)

// TestPermissions checks that serve and check refuse a ca.key others can
// read and a data_dir others can write, and only warn about a key file of
// tls.certificates that others can read.
func TestPermissions(t *testing.T) {
	// newCA returns a data_dir holding a local CA.
	newCA := func(t *testing.T) string {
		dir := filepath.Join(t.TempDir(), "data")
		if _, err := certs.LocalCA(dir, []string{"localhost"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	chmod := func(t *testing.T, file string, mode os.FileMode) {
		if err := os.Chmod(file, mode); err != nil {
			t.Fatal(err)
		}
	}
	ca := newTestCA(t)
	cert, key := ca.leaf("a", time.Now().Add(24*time.Hour), "a.test")
	chmod(t, key, 0o644)
	files := filesConfig(t, "", [2]string{cert, key})

	tests := []struct {
		name  string
		setup func(t *testing.T) (vars map[string]string, want string)
		args  []string
		code  int
	}{
		{"ca.key 0644", func(t *testing.T) (map[string]string, string) {
			dir := newCA(t)
			k := filepath.Join(dir, "ca.key")
			chmod(t, k, 0o644)
			return map[string]string{"HTTPSD_DATA_DIR": dir}, "certs: " + k + " is readable by others (mode 0644); run: chmod 600 " + k
		}, []string{"-config", "testdata/e2e.yaml"}, 2},
		{"data_dir 0777", func(t *testing.T) (map[string]string, string) {
			dir := newCA(t)
			chmod(t, dir, 0o777)
			return map[string]string{"HTTPSD_DATA_DIR": dir}, "certs: " + dir + " is writable by others (mode 0777); run: chmod 700 " + dir
		}, []string{"-config", "testdata/e2e.yaml"}, 2},
		{"new data_dir in a 0777 directory", func(t *testing.T) (map[string]string, string) {
			parent := t.TempDir()
			chmod(t, parent, 0o777)
			return map[string]string{"HTTPSD_DATA_DIR": filepath.Join(parent, "data")}, "local CA: none yet"
		}, []string{"-config", "testdata/e2e.yaml"}, 0},
		{"acme data_dir 0777", func(t *testing.T) (map[string]string, string) {
			dir := t.TempDir()
			chmod(t, dir, 0o777)
			return map[string]string{"HTTPSD_DATA_DIR": dir, "HTTPSD_TLS_SOURCE": "acme", "HTTPSD_HOSTS": "a.example"},
				"certs: " + dir + " is writable by others (mode 0777); run: chmod 700 " + dir
		}, []string{"-config", "testdata/e2e.yaml"}, 2},
		{"ca.key symlink to 0400", func(t *testing.T) (map[string]string, string) {
			dir := newCA(t)
			k, target := filepath.Join(dir, "ca.key"), filepath.Join(t.TempDir(), "ca.key")
			os.Rename(k, target)
			chmod(t, target, 0o400)
			os.Symlink(target, k)
			return map[string]string{"HTTPSD_DATA_DIR": dir}, ": ok (source self-signed"
		}, []string{"-config", "testdata/e2e.yaml"}, 0},
		{"files key 0644", func(t *testing.T) (map[string]string, string) {
			return nil, "warning: certs: " + key + " is readable by others (mode 0644); run: chmod 600 " + key
		}, []string{"-config", files}, 0},
	}
	for _, tt := range tests {
		for _, cmd := range []string{"check", "serve"} {
			if cmd == "serve" && tt.code == 0 {
				continue // it would serve until runCmd's timeout; see TestPermissionsServe
			}
			t.Run(tt.name+"/"+cmd, func(t *testing.T) {
				vars, want := tt.setup(t)
				code, stdout, stderr := runCmd(t, vars, append([]string{cmd}, tt.args...)...)
				if code != tt.code || !strings.Contains(stdout+stderr, want) {
					t.Errorf("httpsd %s = exit %d, want %d and %q in:\nstdout: %s\nstderr: %s", cmd, code, tt.code, want, stdout, stderr)
				}
			})
		}
	}
}

// TestPermissionsServe checks that serve starts with a key file of
// tls.certificates that others can read (as Kubernetes mounts Secrets by
// default) and logs a warning.
func TestPermissionsServe(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.leaf("a", time.Now().Add(24*time.Hour), "a.test")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRun(t, nil, "-config", filesConfig(t, "", [2]string{cert, key}))
	want := "certs: " + key + " is readable by others (mode 0644); run: chmod 600 " + key
	if m := r.logs.find(want); m == nil || m["level"] != "WARN" {
		t.Errorf("no warning %q in:\n%s", want, r.logs)
	}
	r.stop(t)
}
