package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestACMEBackoffSchedule scripts the CA to fail eight times and checks,
// on synctest's fake clock, when Run retries: 1 minute doubling to 1 hour.
// Handshakes during backoff fail at once without reaching the CA.
func TestACMEBackoffSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuffer
		a, err := NewACME(ACMEOptions{Hosts: []string{"a.example"}, CacheDir: t.TempDir(),
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		good, err := LocalCA(filepath.Join(t.TempDir(), "ca"), []string{"a.example"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var mu sync.Mutex
		var calls []time.Duration
		a.obtain = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, time.Since(start).Round(time.Second))
			if len(calls) <= 8 {
				return nil, errors.New("ca says no")
			}
			return good.GetCertificate(hello)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		go func() {
			a.Run(ctx)
			close(done)
		}()

		time.Sleep(30 * time.Second) // inside the first backoff
		synctest.Wait()
		count := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(calls)
		}
		before := count()
		_, err = a.GetCertificate(tls13Hello("a.example"))
		if err == nil || !strings.Contains(err.Error(), "no ECDSA certificate for a.example yet; next attempt at") {
			t.Errorf("handshake during backoff = %v, want a fast failure naming the next attempt", err)
		}
		if count() != before {
			t.Errorf("handshake during backoff called the CA")
		}
		if !strings.Contains(logs.String(), "acme: handshake refused, no certificate yet") {
			t.Errorf("no log line for the refused handshake:\n%s", logs.String())
		}

		for count() < 9 {
			time.Sleep(time.Minute)
		}
		m := time.Minute
		want := []time.Duration{0, 1 * m, 3 * m, 7 * m, 15 * m, 31 * m, 63 * m, 123 * m, 183 * m}
		if len(calls) != len(want) {
			t.Fatalf("CA called at %v, want at %v", calls, want)
		}
		for i := range want {
			if calls[i] != want[i] {
				t.Errorf("attempt %d at %v, want %v (all: %v)", i+1, calls[i], want[i], calls)
			}
		}
		if got := strings.Count(logs.String(), "acme: certificate failed"); got != 8 {
			t.Errorf("logged %d failures, want 8 (one per failed attempt)", got)
		}
		if !strings.Contains(logs.String(), "next_attempt_in=1h0m0s") {
			t.Errorf("no failure log with the capped backoff of 1h:\n%s", logs.String())
		}
		if _, err := a.GetCertificate(tls13Hello("a.example")); err != nil {
			t.Errorf("handshake after success = %v, want the certificate", err)
		}

		// The local CA's leaf lives 397 days; renewal is due 30 days before
		// its end. Past that (and the grace), Run warns hourly.
		leaf := good.Leaves()[0]
		time.Sleep(time.Until(leaf.NotAfter.Add(-30*24*time.Hour + 2*time.Hour - time.Minute)))
		synctest.Wait()
		if strings.Count(logs.String(), "acme: renewal overdue") != 0 {
			t.Errorf("renewal overdue logged before it was due:\n%s", logs.String())
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if n := strings.Count(logs.String(), "acme: renewal overdue"); n != 2 {
			t.Errorf("renewal overdue logged %d times over 2 hours, want 2:\n%s", n, logs.String())
		}
		// A renewal stored through the cache is logged and ends the warnings.
		renewed, _ := LocalCA(filepath.Join(t.TempDir(), "ca"), []string{"a.example"}, time.Now())
		a.certStored("a.example", pemBlock("CERTIFICATE", renewed.certs[0].Certificate[0]))
		if !strings.Contains(logs.String(), "acme: certificate renewed") {
			t.Errorf("no renewed line:\n%s", logs.String())
		}
		time.Sleep(5 * time.Hour)
		synctest.Wait()
		if n := strings.Count(logs.String(), "acme: renewal overdue"); n != 2 {
			t.Errorf("renewal overdue logged after the renewal (%d in all)", n)
		}
		cancel()
		<-done
	})
}

func TestACMERefusesOtherHosts(t *testing.T) {
	a, err := NewACME(ACMEOptions{Hosts: []string{"a.example"}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a.obtain = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		t.Fatal("the CA was asked for a host outside hosts")
		return nil, nil
	}
	for _, name := range []string{"b.example", "", "a.example.evil"} {
		if _, err := a.GetCertificate(&tls.ClientHelloInfo{ServerName: name}); err == nil {
			t.Errorf("GetCertificate(%q) = nil error, want refused", name)
		}
	}
}

func TestKeyFor(t *testing.T) {
	ecdsaSig := []tls.SignatureScheme{tls.PSSWithSHA256, tls.ECDSAWithP256AndSHA256}
	tls12 := []uint16{tls.VersionTLS12}
	tests := []struct {
		name  string
		hello tls.ClientHelloInfo
		want  string
	}{
		{"TLS 1.3 only", tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS13}, SignatureSchemes: ecdsaSig,
			CipherSuites: []uint16{tls.TLS_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.X25519MLKEM768, tls.X25519}}, "a.example"},
		{"TLS 1.3 without ECDSA signatures", tls.ClientHelloInfo{SupportedVersions: []uint16{tls.VersionTLS13},
			SignatureSchemes: []tls.SignatureScheme{tls.PSSWithSHA256}, CipherSuites: []uint16{tls.TLS_AES_128_GCM_SHA256}}, "a.example+rsa"},
		{"TLS 1.2 ECDSA", tls.ClientHelloInfo{SupportedVersions: tls12, SignatureSchemes: ecdsaSig,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.CurveP256}}, "a.example"},
		{"TLS 1.2 RSA suites only", tls.ClientHelloInfo{SupportedVersions: tls12, SignatureSchemes: ecdsaSig,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.CurveP256}}, "a.example+rsa"},
		{"TLS 1.2 ECDSA without P-256", tls.ClientHelloInfo{SupportedVersions: tls12, SignatureSchemes: ecdsaSig,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, SupportedCurves: []tls.CurveID{tls.X25519}}, "a.example+rsa"},
	}
	for _, tt := range tests {
		if got, _ := keyFor("a.example", &tt.hello); got != tt.want {
			t.Errorf("keyFor(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for failures, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour} {
		if got := backoff(time.Minute, time.Hour, failures); got != want {
			t.Errorf("backoff(1m, 1h, %d) = %v, want %v", failures, got, want)
		}
	}
}

// tls13Hello is the hello of a TLS 1.3 client that accepts ECDSA.
func tls13Hello(name string) *tls.ClientHelloInfo {
	return &tls.ClientHelloInfo{ServerName: name, SupportedVersions: []uint16{tls.VersionTLS13},
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}}
}
