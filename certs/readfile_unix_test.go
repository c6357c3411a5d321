//go:build unix

package certs

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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

// within runs f and fails the test if it has not returned after 10s.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return within 10s", what)
	}
}

func TestReadFileSpecial(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	os.WriteFile(regular, []byte("pem"), 0o600)
	fifo := filepath.Join(dir, "fifo")
	mkfifo(t, fifo)
	link := func(name, target string) string {
		file := filepath.Join(dir, name)
		if err := os.Symlink(target, file); err != nil {
			t.Fatal(err)
		}
		return file
	}
	// Kubernetes mounts a Secret's keys as symlinks through ..data.
	os.Symlink(regular, filepath.Join(dir, "..data"))

	tests := []struct {
		name, file string
		want       string // substring of the error; "" = accepted
	}{
		{"fifo", fifo, "certs: read " + fifo + ": not a regular file (a named pipe)"},
		{"symlink to fifo", link("tofifo", fifo), "not a regular file (a named pipe)"},
		{"symlink to /dev/zero", link("zero", "/dev/zero"), "not a regular file (a character device)"},
		{"symlink to a directory", link("todir", dir), "not a regular file (a directory)"},
		{"symlink to a regular file", link("toregular", regular), ""},
		{"chain of symlinks", link("tls.crt", "..data"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var data []byte
			var err error
			within(t, "ReadFile("+tt.file+")", func() { data, err = ReadFile(tt.file) })
			switch {
			case tt.want == "" && (err != nil || string(data) != "pem"):
				t.Errorf("ReadFile(%s) = %q, %v; want %q", tt.file, data, err, "pem")
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("ReadFile(%s) = %d bytes, %v; want an error containing %q", tt.file, len(data), err, tt.want)
			}
		})
	}
}

// TestWatcherFIFO checks that a certificate file replaced by a named pipe
// is reported, not waited on, and the certificates in service stay.
func TestWatcherFIFO(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	p := writeSelfSigned(t, dir, "a", []string{"a.example"}, now.Add(-time.Hour), now.Add(time.Hour))
	stored := 0
	w := NewFileWatcher([]Pair{p}, func(*Set) { stored++ }, nil)
	os.Remove(p.Cert)
	mkfifo(t, p.Cert)
	var err error
	within(t, "FileWatcher.Check", func() { err = w.Check(now) })
	if err == nil || !strings.Contains(err.Error(), p.Cert+": not a regular file (a named pipe)") {
		t.Errorf("Check after the certificate became a named pipe = %v, want it named as not a regular file", err)
	}
	if stored != 0 {
		t.Errorf("Check stored %d new sets, want 0", stored)
	}
}
