package server

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/julienschmidt/httprouter"
)

// filesMtime is the modification time of every file filesTree writes.
var filesMtime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	siteCSS   = "body { color: red }\n"
	siteCSSBr = "BR:not-really-brotli" // served as is, never decoded
)

// gzipped returns s compressed with gzip.
func gzipped(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// filesTree writes the tree the file tests serve and returns root, the
// directory to serve, and outside, a sibling of it holding secrets that
// symlinks in root point to.
func filesTree(t testing.TB) (root, outside string) {
	t.Helper()
	dir := t.TempDir()
	root, outside = filepath.Join(dir, "root"), filepath.Join(dir, "outside")
	files := map[string]string{
		"index.html":               "<h1>home</h1>\n",
		"css/site.css":             siteCSS,
		"css/site.css.br":          siteCSSBr,
		"css/site.css.gz":          gzipped(t, siteCSS),
		"js/app.js":                "console.log(1)\n",
		"js/app.js.gz":             gzipped(t, "console.log(1)\n"),
		"data.zzq":                 "plain text, sniffed\n",
		"data.zzq.gz":              gzipped(t, "plain text, sniffed\n"),
		"docs/b.txt":               "b\n",
		"docs/a:b.txt":             "a:b\n",
		"docs/<x>&.txt":            "x\n",
		"docs/.hidden":             "hidden\n",
		"docs/sub/c.txt":           "c\n",
		"sub/index.html":           "<h1>sub</h1>\n",
		"my dir/index.html":        "<h1>my dir</h1>\n",
		"a:b/index.html":           "<h1>a:b</h1>\n",
		".hidden":                  "SECRET dotfile\n",
		".git/config":              "[core] SECRET\n",
		".well-known/security.txt": "Contact: mailto:security@example.com\n",
		"../outside/secret":        "SECRET outside\n",
		"../outside/index.md":      "SECRET outside index\n",
	}
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, filesMtime, filesMtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"link.css": "css/site.css",                         // inside: served
		"linksub":  "sub",                                  // inside: served
		"passwd":   "/etc/passwd",                          // absolute, outside
		"absin":    filepath.Join(root, "css", "site.css"), // absolute, even inside: os.Root refuses
		"outdir":   "../outside",                           // a directory outside
		"outfile":  "../outside/secret",                    // a file outside
		"deep":     "sub/../../outside/secret",             // escapes on the way
		"loop":     "loop",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

// filesRouter mounts h on /static/*file as the routes do; other paths get
// "no route", so that a test can tell the handler's own 404 from the
// router's.
func filesRouter(h http.Handler) http.Handler {
	rt := httprouter.New()
	rt.RedirectTrailingSlash = false
	rt.RedirectFixedPath = false
	rt.NotFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no route", http.StatusNotFound)
	})
	for _, m := range []string{"GET", "HEAD", "POST", "OPTIONS"} {
		rt.Handler(m, "/static/*file", h)
	}
	return rt
}

// filesCase is a request to the file handler and what must come back.
type filesCase struct {
	method, target string
	reqHeader      []string // name, value, name, value, ...
	status         int
	body           string            // exact; "*" skips the check
	header         map[string]string // "" means absent
}

func (c filesCase) run(t *testing.T, h http.Handler) {
	t.Helper()
	r := httptest.NewRequest(c.method, "https://localhost"+c.target, nil)
	for i := 0; i+1 < len(c.reqHeader); i += 2 {
		r.Header.Add(c.reqHeader[i], c.reqHeader[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != c.status {
		t.Fatalf("%s %s %q = %d, want %d; body %q", c.method, c.target, c.reqHeader, w.Code, c.status, w.Body)
	}
	if c.body != "*" && w.Body.String() != c.body {
		t.Errorf("%s %s %q body = %q, want %q", c.method, c.target, c.reqHeader, w.Body, c.body)
	}
	for k, v := range c.header {
		if got := strings.Join(w.Header().Values(k), ", "); got != v {
			t.Errorf("%s %s %q %s = %q, want %q", c.method, c.target, c.reqHeader, k, got, v)
		}
	}
	if strings.Contains(w.Body.String(), "SECRET") || strings.Contains(w.Body.String(), "root:") {
		t.Errorf("%s %s body leaks a secret: %q", c.method, c.target, w.Body)
	}
}

// filesETag is the ETag Files must give content modified at filesMtime,
// with the coding enc ("" for none).
func filesETag(content, enc string) string {
	if enc != "" {
		enc = "-" + enc
	}
	return fmt.Sprintf(`"%x-%x%s"`, len(content), filesMtime.UnixNano(), enc)
}
