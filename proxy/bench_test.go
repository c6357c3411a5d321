package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// nopWriter is a ResponseWriter that keeps nothing.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkProxy measures one GET through httpsd's proxy against a bare
// httputil.ReverseProxy (Rewrite, SetURL, SetXForwarded) to the same
// small backend on loopback: the difference is what balancing, health,
// retries and metrics cost.
func BenchmarkProxy(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<b>Hello world</b>!")
	}))
	defer backend.Close()
	target, _ := url.Parse(backend.URL)
	bare := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: &http.Transport{MaxIdleConnsPerHost: 32},
	}
	pooled := *bare
	pooled.BufferPool = bufferPool{}
	p, err := New(Options{Upstreams: []string{backend.URL}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"reverseproxy", bare}, {"reverseproxy+pool", &pooled}, {"httpsd", p}} {
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
