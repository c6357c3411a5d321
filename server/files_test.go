package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/julienschmidt/httprouter"
)

func TestFiles(t *testing.T) {
	root, _ := filesTree(t)
	h, err := Files(FilesOptions{Root: root, Param: "file", CacheControl: "public, max-age=60"})
	if err != nil {
		t.Fatal(err)
	}
	rt := filesRouter(h)
	gzCSS := gzipped(t, siteCSS)
	ae := func(v string) []string { return []string{"Accept-Encoding", v} }
	br := map[string]string{"Content-Encoding": "br", "Content-Type": "text/css; charset=utf-8", "Vary": "Accept-Encoding",
		"Etag": filesETag(siteCSSBr, "br"), "Content-Length": strconv.Itoa(len(siteCSSBr)), "Cache-Control": "public, max-age=60"}
	gz := map[string]string{"Content-Encoding": "gzip", "Content-Type": "text/css; charset=utf-8", "Vary": "Accept-Encoding",
		"Etag": filesETag(gzCSS, "gzip"), "Content-Length": strconv.Itoa(len(gzCSS))}
	plain := map[string]string{"Content-Encoding": "", "Content-Type": "text/css; charset=utf-8", "Vary": "Accept-Encoding",
		"Etag": filesETag(siteCSS, ""), "Content-Length": strconv.Itoa(len(siteCSS)), "Cache-Control": "public, max-age=60",
		"Last-Modified": "Tue, 02 Jan 2024 03:04:05 GMT", "Accept-Ranges": "bytes"}
	notFound := "404 not found\n"
	css := "/static/css/site.css"
	for _, c := range []filesCase{
		// Plain files, Content-Type, HEAD.
		{"GET", css, nil, 200, siteCSS, plain},
		{"HEAD", css, nil, 200, "", plain},
		{"GET", "/static/link.css", nil, 200, siteCSS, map[string]string{"Content-Type": "text/css; charset=utf-8"}},
		{"GET", "/static//css//site.css", nil, 200, siteCSS, nil},
		{"GET", "/static/js/app.js", nil, 200, "console.log(1)\n", map[string]string{"Content-Type": "text/javascript; charset=utf-8", "Vary": "Accept-Encoding"}},
		{"GET", "/static/data.zzq", nil, 200, "plain text, sniffed\n", map[string]string{"Content-Type": "text/plain; charset=utf-8"}},
		{"GET", "/static/index.html", nil, 200, "<h1>home</h1>\n", map[string]string{"Content-Type": "text/html; charset=utf-8", "Vary": ""}},
		// Precompressed siblings by Accept-Encoding.
		{"GET", css, ae("br"), 200, siteCSSBr, br},
		{"HEAD", css, ae("br"), 200, "", br},
		{"GET", css, ae("gzip"), 200, gzCSS, gz},
		{"GET", css, ae("gzip, deflate, br, zstd"), 200, siteCSSBr, br},
		{"GET", css, ae("BR ; Q=1"), 200, siteCSSBr, br},
		{"GET", css, ae("*"), 200, siteCSSBr, br},
		{"GET", css, ae("gzip;q=0, *"), 200, siteCSSBr, br},
		{"GET", css, ae("br;q=0, gzip"), 200, gzCSS, gz},
		{"GET", css, ae("*, br;q=0"), 200, gzCSS, gz},
		{"GET", css, ae("br;q=0.5, gzip;q=0.8"), 200, gzCSS, gz},
		{"GET", css, ae("br;q=nan, gzip"), 200, gzCSS, gz},
		{"GET", css, []string{"Accept-Encoding", "br;q=0", "Accept-Encoding", "gzip"}, 200, gzCSS, gz},
		{"GET", css, ae("br;q=0, gzip;q=0"), 200, siteCSS, plain},
		{"GET", css, ae("identity"), 200, siteCSS, plain},
		{"GET", css, ae("zstd"), 200, siteCSS, plain},
		{"GET", "/static/js/app.js", ae("br, gzip"), 200, gzipped(t, "console.log(1)\n"), map[string]string{"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}},
		{"GET", "/static/js/app.js", ae("br"), 200, "console.log(1)\n", map[string]string{"Content-Encoding": "", "Vary": "Accept-Encoding"}},
		{"GET", "/static/data.zzq", ae("gzip"), 200, "*", map[string]string{"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}},
		{"GET", "/static/", ae("br, gzip"), 200, "<h1>home</h1>\n", map[string]string{"Content-Encoding": "", "Vary": ""}},
		// Range: on the plain bytes, and on the compressed ones.
		{"GET", css, []string{"Range", "bytes=0-3"}, 206, "body", map[string]string{"Content-Range": "bytes 0-3/20", "Content-Length": "4"}},
		{"GET", css, []string{"Range", "bytes=-6"}, 206, "red }\n", map[string]string{"Content-Range": "bytes 14-19/20"}},
		{"GET", css, []string{"Range", "bytes=100-"}, 416, "*", map[string]string{"Content-Range": "bytes */20", "Etag": "", "Cache-Control": ""}},
		{"GET", css, []string{"Range", "bytes=100-", "Accept-Encoding", "br"}, 416, "*", map[string]string{"Content-Range": fmt.Sprintf("bytes */%d", len(siteCSSBr)), "Content-Encoding": ""}},
		{"GET", css, []string{"Range", "bytes=0-2", "Accept-Encoding", "br"}, 206, "BR:", map[string]string{"Content-Range": fmt.Sprintf("bytes 0-2/%d", len(siteCSSBr)), "Content-Encoding": "br", "Content-Length": "3"}},
		{"GET", css, []string{"Range", "bytes=0-3", "If-Range", filesETag(siteCSS, "")}, 206, "body", nil},
		{"GET", css, []string{"Range", "bytes=0-3", "If-Range", `"stale"`}, 200, siteCSS, nil},
		// Conditional requests.
		{"GET", css, []string{"If-None-Match", filesETag(siteCSS, "")}, 304, "",
			map[string]string{"Etag": filesETag(siteCSS, ""), "Vary": "Accept-Encoding", "Cache-Control": "public, max-age=60", "Content-Type": ""}},
		{"GET", css, []string{"If-None-Match", `"other"`}, 200, siteCSS, nil},
		{"GET", css, []string{"If-None-Match", filesETag(siteCSSBr, "br"), "Accept-Encoding", "br"}, 304, "", map[string]string{"Content-Encoding": ""}},
		{"GET", css, []string{"If-None-Match", filesETag(siteCSS, ""), "Accept-Encoding", "br"}, 200, siteCSSBr, br},
		{"GET", css, []string{"If-Match", `"stale"`}, 412, "", map[string]string{"Content-Length": ""}},
		{"GET", css, []string{"If-Match", `"stale"`, "Accept-Encoding", "br"}, 412, "", map[string]string{"Content-Length": "", "Content-Encoding": ""}},
		{"GET", css, []string{"If-Match", filesETag(siteCSSBr, "br"), "Accept-Encoding", "br"}, 200, siteCSSBr, br},
		{"GET", css, []string{"If-Unmodified-Since", "Tue, 02 Jan 2024 02:04:05 GMT", "Accept-Encoding", "gzip"}, 412, "", map[string]string{"Content-Length": "", "Content-Encoding": ""}},
		{"GET", css, []string{"If-Modified-Since", "Tue, 02 Jan 2024 03:04:05 GMT"}, 304, "", nil},
		{"GET", css, []string{"If-Modified-Since", "Tue, 02 Jan 2024 02:04:05 GMT"}, 200, siteCSS, nil},
		{"HEAD", css, []string{"If-None-Match", filesETag(siteCSS, "")}, 304, "", nil},
		// Directories.
		{"GET", "/static/", nil, 200, "<h1>home</h1>\n", map[string]string{"Content-Type": "text/html; charset=utf-8", "Cache-Control": "public, max-age=60"}},
		{"GET", "/static/sub/", nil, 200, "<h1>sub</h1>\n", nil},
		{"GET", "/static/linksub/", nil, 200, "<h1>sub</h1>\n", nil},
		{"GET", "/static/sub", nil, 301, "", map[string]string{"Location": "sub/"}},
		{"HEAD", "/static/sub", nil, 301, "", map[string]string{"Location": "sub/"}},
		{"GET", "/static/sub?v=1&w=2", nil, 301, "", map[string]string{"Location": "sub/?v=1&w=2"}},
		{"GET", "/static/my%20dir", nil, 301, "", map[string]string{"Location": "my%20dir/"}},
		{"GET", "/static/a:b", nil, 301, "", map[string]string{"Location": "./a:b/"}},
		{"GET", "/static/docs/", nil, 404, notFound, nil}, // no index.html, Browse off
		{"GET", "/static/empty/", nil, 404, notFound, nil},
		{"GET", "/static/css/site.css/", nil, 404, notFound, nil},
		// Errors and methods.
		{"GET", "/static/missing.css", nil, 404, notFound, map[string]string{"Cache-Control": "", "Vary": ""}},
		{"POST", css, nil, 405, "405 method not allowed\n", map[string]string{"Allow": "GET, HEAD"}},
		{"OPTIONS", css, nil, 405, "405 method not allowed\n", map[string]string{"Allow": "GET, HEAD"}},
		// Dotfiles and traversal: the handler's own 404, never a redirect.
		{"GET", "/static/.hidden", nil, 404, notFound, nil},
		{"GET", "/static/.git/config", nil, 404, notFound, nil},
		{"GET", "/static/.git", nil, 404, notFound, map[string]string{"Location": ""}},
		{"GET", "/static/.git/", nil, 404, notFound, nil},
		{"GET", "/static/docs/.hidden", nil, 404, notFound, nil},
		{"GET", "/static/.well-known/security.txt", nil, 200, "Contact: mailto:security@example.com\n", nil}, // RFC 8615
		{"GET", "/static/./css/site.css", nil, 404, notFound, nil},
		{"GET", "/static/../outside/secret", nil, 404, notFound, nil},
		{"GET", "/static/css/../../outside/secret", nil, 404, notFound, nil},
		{"GET", "/static/%2e%2e/outside/secret", nil, 404, notFound, nil},
		{"GET", "/static/..%2Foutside%2Fsecret", nil, 404, notFound, nil},
		{"GET", "/static/..%2foutside/secret", nil, 404, notFound, nil},
		{"GET", "/static/css%2Fsite.css", nil, 404, notFound, nil},
		{"GET", "/static/a%5C..%5Cb", nil, 404, notFound, nil},
		{"GET", "/static/css%5csite.css", nil, 404, notFound, nil},
		{"GET", "/static/site.css%00.css", nil, 404, notFound, nil},
		{"GET", "/static/passwd", nil, 404, notFound, nil},
		{"GET", "/static/absin", nil, 404, notFound, nil},
		{"GET", "/static/outdir", nil, 404, notFound, map[string]string{"Location": ""}},
		{"GET", "/static/outdir/", nil, 404, notFound, nil},
		{"GET", "/static/outdir/secret", nil, 404, notFound, nil},
		{"GET", "/static/outdir/index.md", nil, 404, notFound, nil},
		{"GET", "/static/outfile", nil, 404, notFound, nil},
		{"GET", "/static/deep", nil, 404, notFound, nil},
		{"GET", "/static/loop", nil, 404, notFound, nil},
	} {
		t.Run(c.method+" "+c.target+" "+strings.Join(c.reqHeader, ":"), func(t *testing.T) { c.run(t, rt) })
	}
}

func TestFilesBrowse(t *testing.T) {
	root, _ := filesTree(t)
	opts := FilesOptions{Root: root, Param: "file", Browse: true, CacheControl: "max-age=60"}
	h, err := Files(opts)
	if err != nil {
		t.Fatal(err)
	}
	docs := `<!doctype html>
<meta charset="utf-8">
<title>Index of /static/docs/</title>
<h1>Index of /static/docs/</h1>
<ul>
<li><a href="../">../</a>
<li><a href="%3Cx%3E&amp;.txt">&lt;x&gt;&amp;.txt</a>
<li><a href="./a:b.txt">a:b.txt</a>
<li><a href="b.txt">b.txt</a>
<li><a href="sub/">sub/</a>
</ul>
`
	for _, c := range []filesCase{
		{"GET", "/static/docs/", nil, 200, docs, map[string]string{"Content-Type": "text/html; charset=UTF-8", "Cache-Control": ""}},
		{"HEAD", "/static/docs/", nil, 200, "", map[string]string{"Content-Type": "text/html; charset=UTF-8"}},
		{"GET", "/static/docs", nil, 301, "", map[string]string{"Location": "docs/"}},
		{"GET", "/static/", nil, 200, "<h1>home</h1>\n", nil}, // index.html first
		{"GET", "/static/empty/", nil, 200, "*", nil},
		{"GET", "/static/outdir/", nil, 404, "404 not found\n", nil},
		{"GET", "/static/.git/", nil, 404, "404 not found\n", nil},
	} {
		t.Run(c.method+" "+c.target, func(t *testing.T) { c.run(t, filesRouter(h)) })
	}

	// The top directory has no link to a parent; the listing is capped.
	if err := os.Remove(filepath.Join(root, "index.html")); err != nil {
		t.Fatal(err)
	}
	h.(*fileHandler).maxList = 3
	w := httptest.NewRecorder()
	filesRouter(h).ServeHTTP(w, httptest.NewRequest("GET", "/static/", nil))
	body := w.Body.String()
	if w.Code != 200 || strings.Contains(body, `href="../"`) || strings.Count(body, "<li>") > 3 || !strings.Contains(body, "Only 3 entries") {
		t.Errorf("GET /static/ (no index.html, 3 entries listed at most) = %d %q, want 200, at most 3 entries, no parent link and a note", w.Code, body)
	}
}

func TestFilesWholePath(t *testing.T) {
	root, _ := filesTree(t)
	h, err := Files(FilesOptions{Root: root}) // no Param: the URL path
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []filesCase{
		{"GET", "/css/site.css", nil, 200, siteCSS, nil},
		{"GET", "/", nil, 200, "<h1>home</h1>\n", nil},
		{"GET", "/sub", nil, 301, "", map[string]string{"Location": "sub/"}},
		{"GET", "/static/css/site.css", nil, 404, "404 not found\n", nil},
		{"GET", "/../outside/secret", nil, 404, "404 not found\n", nil},
		{"GET", "/.git/config", nil, 404, "404 not found\n", nil},
	} {
		t.Run(c.target, func(t *testing.T) { c.run(t, h) })
	}
}

// TestFilesNamedParam: a :name parameter has no leading slash.
func TestFilesNamedParam(t *testing.T) {
	root, _ := filesTree(t)
	h, err := Files(FilesOptions{Root: filepath.Join(root, "css"), Param: "name"})
	if err != nil {
		t.Fatal(err)
	}
	rt := httprouter.New()
	rt.Handler("GET", "/css/:name", h)
	filesCase{"GET", "/css/site.css", nil, 200, siteCSS, nil}.run(t, rt)
	filesCase{"GET", "/css/%2e%2e", nil, 404, "404 not found\n", nil}.run(t, rt)
}

func TestFilesMissingParamPanics(t *testing.T) {
	root, _ := filesTree(t)
	h, err := Files(FilesOptions{Root: root, Param: "file"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		v := recover()
		if s, _ := v.(string); !strings.Contains(s, `no route parameter "file"`) {
			t.Errorf("GET without the route parameter panicked with %v, want a panic naming the parameter", v)
		}
	}()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/css/site.css", nil))
}

func TestFilesRootErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, tt := range []struct {
		root string
		want string
		is   error
	}{
		{"", "server: files root not set", nil},
		{missing, "server: files root " + missing + ": no such file or directory", fs.ErrNotExist},
		{file, "server: files root " + file + ": not a directory", nil},
	} {
		h, err := Files(FilesOptions{Root: tt.root})
		if err == nil || err.Error() != tt.want || h != nil {
			t.Errorf("Files(Root: %q) = %v, %v; want nil, %q", tt.root, h, err, tt.want)
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("Files(Root: %q) = %v, want an error matching %v", tt.root, err, tt.is)
		}
	}
}

// TestFilesFollowsRootSwap: a deploy that points the root's symlink at a
// new release is served from the next request on.
func TestFilesFollowsRootSwap(t *testing.T) {
	dir := t.TempDir()
	for _, rel := range []string{"release-1", "release-2"} {
		if err := os.MkdirAll(filepath.Join(dir, rel), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rel, "v.txt"), []byte(rel), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	current := filepath.Join(dir, "current")
	if err := os.Symlink("release-1", current); err != nil {
		t.Fatal(err)
	}
	h, err := Files(FilesOptions{Root: current})
	if err != nil {
		t.Fatal(err)
	}
	filesCase{"GET", "/v.txt", nil, 200, "release-1", nil}.run(t, h)
	// Swapped atomically, as deploy tools do: a new link renamed over.
	if err := os.Symlink("release-2", current+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(current+".new", current); err != nil {
		t.Fatal(err)
	}
	filesCase{"GET", "/v.txt", nil, 200, "release-2", nil}.run(t, h)
	if err := os.RemoveAll(filepath.Join(dir, "release-2")); err != nil {
		t.Fatal(err)
	}
	filesCase{"GET", "/v.txt", nil, 404, "404 not found\n", nil}.run(t, h)
}

func TestFilesPermission(t *testing.T) {
	// The mapping, whoever runs the test.
	w := httptest.NewRecorder()
	fail(w, fmt.Errorf("open: %w", &fs.PathError{Op: "openat", Path: "/srv/x", Err: fs.ErrPermission}))
	if w.Code != 403 || strings.Contains(w.Body.String(), "/srv") {
		t.Errorf("fail(permission error) = %d %q, want 403 without the path", w.Code, w.Body)
	}
	if os.Geteuid() == 0 {
		t.Skip("root reads files whatever their mode")
	}
	root, outside := filesTree(t)
	for _, p := range []string{filepath.Join(root, "css", "site.css"), filepath.Join(outside, "secret")} {
		if err := os.Chmod(p, 0); err != nil {
			t.Fatal(err)
		}
	}
	h, err := Files(FilesOptions{Root: root, Param: "file"})
	if err != nil {
		t.Fatal(err)
	}
	filesCase{"GET", "/static/css/site.css", nil, 403, "403 forbidden\n", nil}.run(t, filesRouter(h))
	// Outside the root, an unreadable file is no more than missing.
	filesCase{"GET", "/static/outfile", nil, 404, "404 not found\n", nil}.run(t, filesRouter(h))
}

// TestFilesManyRanges: up to maxRanges ranges come back as parts; a
// request naming more gets the whole file, so that a long Range header of
// one-byte ranges cannot make the answer dozens of times its size.
func TestFilesManyRanges(t *testing.T) {
	root := t.TempDir()
	content := strings.Repeat("0123456789", 100)
	if err := os.WriteFile(filepath.Join(root, "f.txt"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := Files(FilesOptions{Root: root, Param: "file"})
	if err != nil {
		t.Fatal(err)
	}
	rt := httprouter.New()
	rt.Handler("GET", "/static/*file", h)
	ranges := func(n int) string {
		r := make([]string, n)
		for i := range r {
			r[i] = fmt.Sprintf("%d-%d", i*2, i*2)
		}
		return "bytes=" + strings.Join(r, ",")
	}
	for _, tt := range []struct {
		n, status int
	}{
		{1, 206},
		{maxRanges, 206},
		{maxRanges + 1, 200},
		{1800, 200},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/static/f.txt", nil)
		r.Header.Set("Range", ranges(tt.n))
		rt.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("GET /static/f.txt with %d ranges = %d, want %d", tt.n, w.Code, tt.status)
		}
		if tt.status == 200 && w.Body.String() != content {
			t.Errorf("GET /static/f.txt with %d ranges: %d bytes, want the whole file (%d)", tt.n, w.Body.Len(), len(content))
		}
	}
}
