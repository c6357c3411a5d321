package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLocalCACreatesOnceAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	now := time.Now()
	set, err := LocalCA(dir, []string{"localhost", "127.0.0.1", "::1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, CAKeyFile): 0o600, filepath.Join(dir, CACertFile): 0o644} {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != want {
			t.Errorf("mode of %s = %v, want %v", file, got, want)
		}
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	leaf := set.Leaves()[0]
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("leaf.Verify(%s) against the CA: %v", host, err)
		}
	}
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("leaf key = %T, want ECDSA P-256", leaf.PublicKey)
	}

	// A second start reuses the same CA.
	set2, err := LocalCA(dir, []string{"localhost"}, now)
	if err != nil {
		t.Fatal(err)
	}
	caPEM2, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	if !bytes.Equal(caPEM, caPEM2) {
		t.Error("second LocalCA replaced ca.crt, want it reused")
	}
	if _, err := set2.Leaves()[0].Verify(x509.VerifyOptions{DNSName: "localhost", Roots: pool}); err != nil {
		t.Errorf("second leaf does not verify against the first CA: %v", err)
	}
}

func TestLocalCAKeepsBrokenFiles(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"corrupt cert", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, CACertFile), []byte("garbage"), 0o644)
		}, "no PEM certificate found"},
		{"key missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, CAKeyFile))
		}, "ca.key is missing"},
		{"cert missing", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, CACertFile))
		}, "ca.crt is missing"},
		{"mismatched key", func(t *testing.T, dir string) {
			other := filepath.Join(t.TempDir(), "data")
			if _, err := LocalCA(other, []string{"localhost"}, now); err != nil {
				t.Fatal(err)
			}
			key, _ := os.ReadFile(filepath.Join(other, CAKeyFile))
			os.WriteFile(filepath.Join(dir, CAKeyFile), key, 0o600)
		}, "does not match"},
		{"not a CA", func(t *testing.T, dir string) {
			p := writeSelfSigned(t, t.TempDir(), "leaf", []string{"x.example"}, now.Add(-time.Hour), now.Add(time.Hour))
			os.Rename(p.Cert, filepath.Join(dir, CACertFile))
			os.Rename(p.Key, filepath.Join(dir, CAKeyFile))
		}, "is not a CA certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if _, err := LocalCA(dir, []string{"localhost"}, now); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			before := readDir(t, dir)
			_, err := LocalCA(dir, []string{"localhost"}, now)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LocalCA = %v, want an error containing %q", err, tt.want)
			}
			if _, cerr := CheckLocalCA(dir, now); cerr == nil {
				t.Errorf("CheckLocalCA = nil error, want %q", tt.want)
			}
			if after := readDir(t, dir); after != before {
				t.Errorf("LocalCA changed the data dir:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

func TestCheckLocalCAWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	exists, err := CheckLocalCA(dir, time.Now())
	if exists || err != nil {
		t.Fatalf("CheckLocalCA(no dir) = %v, %v; want false, nil", exists, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("CheckLocalCA created %s", dir)
	}
	if _, err := LocalCA(dir, []string{"localhost"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if exists, err := CheckLocalCA(dir, time.Now()); !exists || err != nil {
		t.Errorf("CheckLocalCA(good CA) = %v, %v; want true, nil", exists, err)
	}
}

func TestLocalCALeafServes(t *testing.T) {
	set, err := LocalCA(filepath.Join(t.TempDir(), "data"), []string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := set.GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
	if err != nil || c.Leaf.DNSNames[0] != "localhost" {
		t.Fatalf("GetCertificate(localhost) = %v, %v", c, err)
	}
}

// readDir describes every file in dir with its size, mode and content.
func readDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		info, _ := e.Info()
		b.WriteString(e.Name() + " " + info.Mode().String() + " " + string(data) + "\n")
	}
	return b.String()
}
