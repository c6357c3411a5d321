package server

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestFilesOverTLS serves files through the whole HTTPS stack (TLS, the
// middleware, an httprouter route /static/*file) to HTTP/1.1 and HTTP/2
// clients, with the paths sent on the wire as written here.
func TestFilesOverTLS(t *testing.T) {
	root, _ := filesTree(t)
	h, err := Files(FilesOptions{Root: root, Param: "file", CacheControl: "max-age=60"})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, Options{}, filesRouter(h))
	etag := filesETag(siteCSS, "")
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			tr := ts.client.Transport.(*http.Transport).Clone()
			if proto == "HTTP/1.1" {
				tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
				tr.ForceAttemptHTTP2 = false
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			for _, c := range []struct {
				method, path string
				header       []string // name, value, ...
				status       int
				body         string
				respHeader   map[string]string // "" means absent
				uncompressed bool              // the transport asked for gzip and decoded it
			}{
				// No Accept-Encoding of ours: Go's transport asks for gzip itself and decodes it.
				{"GET", "/static/css/site.css", nil, 200, siteCSS, map[string]string{"Vary": "Accept-Encoding", "Cache-Control": "max-age=60", "X-Content-Type-Options": "nosniff"}, true},
				{"GET", "/static/css/site.css", []string{"Accept-Encoding", "br"}, 200, siteCSSBr, map[string]string{"Content-Encoding": "br", "Content-Type": "text/css; charset=utf-8", "Etag": filesETag(siteCSSBr, "br")}, false},
				{"GET", "/static/css/site.css", []string{"Accept-Encoding", "br;q=0, gzip;q=0"}, 200, siteCSS, map[string]string{"Content-Encoding": "", "Etag": etag}, false},
				{"HEAD", "/static/css/site.css", []string{"Accept-Encoding", "identity"}, 200, "", map[string]string{"Content-Length": strconv.Itoa(len(siteCSS))}, false},
				{"GET", "/static/css/site.css", []string{"Range", "bytes=5-9", "Accept-Encoding", "identity"}, 206, "{ col", map[string]string{"Content-Range": "bytes 5-9/20"}, false},
				{"GET", "/static/css/site.css", []string{"Range", "bytes=-3", "Accept-Encoding", "identity"}, 206, " }\n", map[string]string{"Content-Range": "bytes 17-19/20"}, false},
				{"GET", "/static/css/site.css", []string{"Range", "bytes=20-", "Accept-Encoding", "identity"}, 416, "*", map[string]string{"Content-Range": "bytes */20"}, false},
				{"GET", "/static/css/site.css", []string{"If-None-Match", etag, "Accept-Encoding", "identity"}, 304, "", map[string]string{"Etag": etag}, false},
				{"GET", "/static/css/site.css", []string{"If-Modified-Since", "Tue, 02 Jan 2024 03:04:05 GMT", "Accept-Encoding", "identity"}, 304, "", nil, false},
				{"GET", "/static/css/site.css", []string{"If-Match", `"stale"`, "Accept-Encoding", "br"}, 412, "", map[string]string{"Content-Encoding": ""}, false},
				{"GET", "/static/css/site.css", []string{"If-Match", filesETag(siteCSSBr, "br"), "Accept-Encoding", "br"}, 200, siteCSSBr, nil, false},
				{"GET", "/static/", nil, 200, "<h1>home</h1>\n", map[string]string{"Content-Type": "text/html; charset=utf-8"}, false},
				{"GET", "/static/sub", nil, 301, "", map[string]string{"Location": "sub/"}, false},
				{"GET", "/static/link.css", []string{"Accept-Encoding", "identity"}, 200, siteCSS, nil, false},
				{"POST", "/static/css/site.css", nil, 405, "405 method not allowed\n", map[string]string{"Allow": "GET, HEAD"}, false},
				// Traversal: the handler's own 404.
				{"GET", "/static/../outside/secret", nil, 404, "404 not found\n", nil, false},
				{"GET", "/static/%2e%2e/outside/secret", nil, 404, "404 not found\n", nil, false},
				{"GET", "/static/..%2Foutside%2Fsecret", nil, 404, "404 not found\n", nil, false},
				{"GET", "/static/a%5C..%5Cb", nil, 404, "404 not found\n", nil, false},
				{"GET", "/static/passwd", nil, 404, "404 not found\n", nil, false},
				{"GET", "/static/outdir", nil, 404, "404 not found\n", map[string]string{"Location": ""}, false},
				{"GET", "/static/outdir/secret", nil, 404, "404 not found\n", nil, false},
				{"GET", "/static/.git/config", nil, 404, "404 not found\n", nil, false},
				{"GET", "/static/.hidden", nil, 404, "404 not found\n", nil, false},
			} {
				req, err := http.NewRequest(c.method, ts.url+c.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i+1 < len(c.header); i += 2 {
					req.Header.Add(c.header[i], c.header[i+1])
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", c.method, c.path, err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("%s %s: reading the body: %v", c.method, c.path, err)
				}
				if resp.StatusCode != c.status || resp.Proto != proto {
					t.Errorf("%s %s %q = %d over %s, want %d over %s; body %q", c.method, c.path, c.header, resp.StatusCode, resp.Proto, c.status, proto, body)
					continue
				}
				if c.body != "*" && string(body) != c.body {
					t.Errorf("%s %s %q body = %q, want %q", c.method, c.path, c.header, body, c.body)
				}
				if resp.Uncompressed != c.uncompressed {
					t.Errorf("%s %s %q: gzip decoded by the transport = %v, want %v", c.method, c.path, c.header, resp.Uncompressed, c.uncompressed)
				}
				for k, v := range c.respHeader {
					if got := resp.Header.Get(k); got != v {
						t.Errorf("%s %s %q %s = %q, want %q", c.method, c.path, c.header, k, got, v)
					}
				}
			}
		})
	}
}
