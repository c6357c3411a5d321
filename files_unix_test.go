//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/httpsd/httpsd/certs"
)

// mkfifo makes a named pipe at file. Cleanup opens it for writing, which
// frees a reader that blocked in open (with no writer, the open fails).
func mkfifo(t *testing.T, file string) {
	t.Helper()
	if err := syscall.Mkfifo(file, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w, err := os.OpenFile(file, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
	})
}

// runWithin is runCmd that fails the test if run has not returned after
// 15s, as when it blocks opening a named pipe.
func runWithin(t *testing.T, vars map[string]string, args ...string) (code int, out string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var stdout, stderr string
		code, stdout, stderr = runCmd(t, vars, args...)
		out = stdout + stderr
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("httpsd %s did not return within 15s", strings.Join(args, " "))
	}
	return code, out
}

// TestSpecialFiles puts a named pipe, /dev/zero, a directory, a 2 MiB file
// and a symlink to a good file where httpsd reads each of its files: all
// but the symlink must be refused at once, naming the file.
func TestSpecialFiles(t *testing.T) {
	ca := newTestCA(t)
	goodCert, goodKey := ca.leaf("good", time.Now().Add(24*time.Hour), "good.test")
	goodConfig := filesConfig(t, "", [2]string{goodCert, goodKey})
	// A local CA whose ca.key is moved away, to be replaced.
	caDir := filepath.Join(t.TempDir(), "data")
	if _, err := certs.LocalCA(caDir, []string{"localhost"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	goodCAKey := filepath.Join(t.TempDir(), "ca.key")
	if err := os.Rename(filepath.Join(caDir, "ca.key"), goodCAKey); err != nil {
		t.Fatal(err)
	}

	// Each place returns where the file under test goes, a good file for
	// that place, and how to run httpsd so that it reads it.
	type place func(t *testing.T) (file, good string, vars map[string]string, args []string)
	places := []struct {
		name string
		at   place
	}{
		{"config", func(t *testing.T) (string, string, map[string]string, []string) {
			file := filepath.Join(t.TempDir(), "config.yaml")
			return file, goodConfig, nil, []string{"check", "-config", file}
		}},
		{"cert", func(t *testing.T) (string, string, map[string]string, []string) {
			file := filepath.Join(t.TempDir(), "tls.crt")
			return file, goodCert, nil, []string{"check", "-config", filesConfig(t, "", [2]string{file, goodKey})}
		}},
		{"key", func(t *testing.T) (string, string, map[string]string, []string) {
			file := filepath.Join(t.TempDir(), "tls.key")
			return file, goodKey, nil, []string{"check", "-config", filesConfig(t, "", [2]string{goodCert, file})}
		}},
		{"serve cert", func(t *testing.T) (string, string, map[string]string, []string) {
			file := filepath.Join(t.TempDir(), "tls.crt")
			return file, goodCert, nil, []string{"serve", "-config", filesConfig(t, "", [2]string{file, goodKey})}
		}},
		{"ca.key", func(t *testing.T) (string, string, map[string]string, []string) {
			dir := filepath.Join(t.TempDir(), "data")
			os.Mkdir(dir, 0o700)
			os.WriteFile(filepath.Join(dir, "ca.crt"), mustRead(t, filepath.Join(caDir, "ca.crt")), 0o644)
			return filepath.Join(dir, "ca.key"), goodCAKey, map[string]string{"HTTPSD_DATA_DIR": dir}, []string{"check", "-config", "testdata/e2e.yaml"}
		}},
		{"ca_roots", func(t *testing.T) (string, string, map[string]string, []string) {
			file := filepath.Join(t.TempDir(), "roots.pem")
			vars := map[string]string{"HTTPSD_TLS_SOURCE": "acme", "HTTPSD_HOSTS": "good.example", "HTTPSD_TLS_ACME_CA_ROOTS": file,
				"HTTPSD_DATA_DIR": filepath.Join(t.TempDir(), "data")}
			return file, ca.file, vars, []string{"check", "-config", "testdata/e2e.yaml"}
		}},
	}
	kinds := []struct {
		name string
		make func(t *testing.T, file, good string)
		want string // in the error after the file name; "" = accepted
	}{
		{"named pipe", func(t *testing.T, file, _ string) { mkfifo(t, file) }, "not a regular file (a named pipe)"},
		{"symlink to /dev/zero", func(t *testing.T, file, _ string) { os.Symlink("/dev/zero", file) }, "not a regular file (a character device)"},
		{"directory", func(t *testing.T, file, _ string) { os.Mkdir(file, 0o700) }, "not a regular file (a directory)"},
		{"2 MiB", func(t *testing.T, file, _ string) {
			os.WriteFile(file, bytes.Repeat([]byte("# big\n"), 2<<20/6), 0o600)
		}, "larger than 1 MiB"},
		{"symlink to a good file", func(t *testing.T, file, good string) { os.Symlink(good, file) }, ""},
	}
	for _, p := range places {
		for _, k := range kinds {
			if k.want == "" && strings.HasPrefix(p.name, "serve") {
				continue // it would serve until runCmd's timeout
			}
			t.Run(p.name+"/"+k.name, func(t *testing.T) {
				file, good, vars, args := p.at(t)
				k.make(t, file, good)
				code, out := runWithin(t, vars, args...)
				if k.want == "" {
					if code != 0 {
						t.Errorf("httpsd %s with %s = exit %d, want 0:\n%s", args[0], k.name, code, out)
					}
					return
				}
				if want := file + ": " + k.want; code != 2 || !strings.Contains(out, want) {
					t.Errorf("httpsd %s with %s = exit %d, want 2 and %q in:\n%s", args[0], k.name, code, want, out)
				}
			})
		}
	}
}
