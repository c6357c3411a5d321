package server

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/httpsd/httpsd/certs"
)

// nopWriter is a ResponseWriter that keeps nothing, so that benchmarks
// measure the handler, not the recorder.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// WriteString is there because net/http's ResponseWriter has it too.
func (w *nopWriter) WriteString(s string) (int, error) { return len(s), nil }

// bare is the bare net/http peer's handler (../shared/peers/go), the
// baseline the hot path is measured against.
func bare() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/hello/")
		if !ok || name == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Hello "+name+"!")
	})
}

// BenchmarkHello measures one GET /hello/world through the whole HTTPS
// handler (limits, host check, headers, metrics, router, hello) against
// the bare peer's handler, without the network.
func BenchmarkHello(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", bare()},
		{"httpsd", New(Options{Hosts: []string{"localhost"}, Limits: Limits{MaxConcurrent: 1024, QueueTimeout: 100 * time.Millisecond,
			MaxConnsPerIP: 256, MaxBodyBytes: 1 << 20}}).Handler()},
		{"httpsd+rate", New(Options{Hosts: []string{"localhost"}, Limits: Limits{MaxConcurrent: 1024, QueueTimeout: 100 * time.Millisecond,
			MaxConnsPerIP: 256, MaxBodyBytes: 1 << 20, RatePerIP: 1e9, BurstPerIP: 1e9}}).Handler()},
		{"httpsd+accesslog", New(Options{Hosts: []string{"localhost"}, AccessLog: true,
			AccessLogWriter: io.Discard}).Handler()},
		{"httpsd+accesslog-slog", New(Options{Hosts: []string{"localhost"}, AccessLog: true,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler()},
		{"httpsd+accesslog-json", New(Options{Hosts: []string{"localhost"}, AccessLog: true,
			AccessLogWriter: io.Discard, AccessLogJSON: true}).Handler()},
		{"httpsd+accesslog-json-slog", New(Options{Hosts: []string{"localhost"}, AccessLog: true,
			Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}).Handler()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "https://localhost/hello/world", nil)
			w := &nopWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				bc.h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkHandshake measures full TLS 1.3 handshakes (ECDSA P-256,
// X25519MLKEM768) over an in-memory pipe, server side with httpsd's
// TLSConfig and certificate selection against Go's defaults.
func BenchmarkHandshake(b *testing.B) {
	set, err := certs.LocalCA(filepath.Join(b.TempDir(), "ca"), []string{"localhost"}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	cert, _ := set.GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
	for _, bc := range []struct {
		name string
		conf *tls.Config
	}{
		{"default", &tls.Config{Certificates: []tls.Certificate{*cert}}},
		{"httpsd", TLSConfig(set.GetCertificate, 0)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", ClientSessionCache: nil}
			b.ReportAllocs()
			for b.Loop() {
				c, s := net.Pipe()
				errc := make(chan error, 1)
				go func() { errc <- tls.Server(s, bc.conf).HandshakeContext(context.Background()) }()
				if err := tls.Client(c, client).Handshake(); err != nil {
					b.Fatal(err)
				}
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
				c.Close()
				s.Close()
			}
		})
	}
}
