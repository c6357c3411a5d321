package server

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// FilesOptions configures Files. Root is required; the zero value of every
// other field is a valid choice, given in its comment.
type FilesOptions struct {
	// Root is the directory served; it must exist. It is opened anew for
	// every request, so that a deploy that swaps a symlinked root
	// (/srv/app/current -> release-N) is followed at once. Symbolic links
	// under Root are followed when they are relative and stay inside it;
	// absolute ones and those leading out of Root are 404.
	Root string
	// Browse lists a directory that has no index.html, in a small HTML
	// page without dotfiles; false answers 404 for such a directory.
	Browse bool
	// CacheControl is the Cache-Control value sent with files (and their
	// precompressed variants, and the 304s that revalidate them), such as
	// "public, max-age=3600"; "" sends none.
	CacheControl string
	// Param names the httprouter parameter (httprouter.ParamsFromContext)
	// holding the path of the file under Root, such as "file" for a route
	// "/static/*file": then /static/css/site.css serves Root/css/site.css,
	// as nginx's alias does. "" serves the whole URL path under Root, as
	// nginx's root does. A request whose context lacks the parameter is a
	// wiring mistake: the handler panics, naming it.
	Param string
}

// maxListing bounds the entries read for a directory listing, so that one
// request for a huge directory costs bounded memory and time.
const maxListing = 5000

// fileHandler serves the files under root; see Files.
type fileHandler struct {
	root         string   // absolute
	browse       bool     // list directories without index.html
	cacheControl []string // nil: no Cache-Control
	param        string   // httprouter parameter holding the path; "": the URL path
	maxList      int      // maxListing, lower in tests
}

var _ http.Handler = (*fileHandler)(nil)

var allowFiles = []string{"GET, HEAD"}

// Files returns a handler serving the files under opts.Root to GET and
// HEAD requests (other methods get 405 with Allow: GET, HEAD), or an
// error naming what is wrong with Root.
//
// A directory serves its index.html; one asked for without a trailing
// slash is redirected (301) to the path with one. Files get a strong ETag
// (size and modification time), Last-Modified, Content-Type by extension
// (sniffed when the extension is unknown), and net/http's answers to
// conditional (304) and Range (206, 416) requests (more than 64 ranges
// in one request: the whole file, 200). A client whose
// Accept-Encoding allows it gets the precompressed sibling x.br or x.gz
// of x instead, with Content-Encoding, x's Content-Type and an ETag of its
// own; every response for a file that has such a sibling carries
// Vary: Accept-Encoding.
//
// A path with a segment starting with "." (dotfiles, "..") or holding a
// backslash, a NUL or an encoded separator (%2F, %5C) is 404, as is one
// whose real location is not under Root, or is neither a regular file nor
// a directory. A file (or directory) the server may not read is 403, as
// nginx, Apache and Caddy answer, rather than 404: the path has passed
// every check above, so it lies where files are meant to be public, and
// the operator's mistake (a file httpsd's user cannot read) shows as what
// it is in the access log. Response bodies never name a path of the
// filesystem.
func Files(opts FilesOptions) (http.Handler, error) {
	if opts.Root == "" {
		return nil, errors.New("server: files root not set")
	}
	dir, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("server: files root %s: %w", opts.Root, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("server: files root %s: %w", opts.Root, pathErr(err))
	}
	defer root.Close()
	if fi, err := root.Stat("."); err != nil {
		return nil, fmt.Errorf("server: files root %s: %w", opts.Root, pathErr(err))
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("server: files root %s: not a directory", opts.Root)
	}
	h := &fileHandler{root: dir, browse: opts.Browse, param: opts.Param, maxList: maxListing}
	if opts.CacheControl != "" {
		h.cacheControl = []string{opts.CacheControl}
	}
	return h, nil
}

// pathErr returns the error inside a *fs.PathError, whose message would
// repeat the path.
func pathErr(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// ServeHTTP serves the file r asks for; see Files.
func (h *fileHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = allowFiles
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, slash, ok := h.path(r)
	if !ok {
		notFound(w, r)
		return
	}
	root, err := os.OpenRoot(h.root)
	if err != nil {
		fail(w, err)
		return
	}
	defer root.Close()
	f, fi, err := open(root, name)
	if err != nil {
		fail(w, err)
		return
	}
	defer func() { f.Close() }()
	switch {
	case fi.IsDir() && !slash:
		redirectToDir(w, r)
		return
	case fi.IsDir():
		index := path.Join(name, "index.html")
		xf, xfi, err := open(root, index)
		switch {
		case err == nil && xfi.Mode().IsRegular():
			f.Close()
			f, fi, name = xf, xfi, index
		case err == nil || errors.Is(err, fs.ErrNotExist):
			if xf != nil {
				xf.Close()
			}
			if !h.browse {
				notFound(w, r)
				return
			}
			h.list(w, r, f, name == ".")
			return
		default:
			fail(w, err)
			return
		}
	case slash: // a file asked for as a directory
		notFound(w, r)
		return
	}
	h.serveFile(w, r, root, name, f, fi)
}

// redirectToDir answers a directory asked for without its trailing slash
// with a relative redirect to the path with one, as http.FileServer does:
// it holds nothing but the last segment the client sent, and works
// whatever prefix the handler is mounted under.
func redirectToDir(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	loc := p[strings.LastIndexByte(p, '/')+1:] + "/"
	if strings.IndexByte(loc, ':') >= 0 {
		loc = "./" + loc // not a scheme
	}
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusMovedPermanently)
}

// maxRanges is the most ranges a Range request may name and get them as
// parts; one naming more gets the whole file.
const maxRanges = 64

// serveFile serves the regular file f, named name under root, or the
// precompressed sibling r's Accept-Encoding prefers.
func (h *fileHandler) serveFile(w http.ResponseWriter, r *http.Request, root *os.Root, name string, f *os.File, fi fs.FileInfo) {
	if rg := r.Header["Range"]; len(rg) == 1 && strings.Count(rg[0], ",") >= maxRanges {
		// Each part costs a multipart header of its own: a request naming
		// thousands of one-byte ranges would get back 35 times its size.
		// Past maxRanges the file is served whole, as Apache's MaxRanges.
		whole := *r
		whole.Header = r.Header.Clone()
		whole.Header.Del("Range")
		r = &whole
	}
	hdr := w.Header()
	enc, cf, cfi, varies := precompressed(root, name, r.Header["Accept-Encoding"])
	if varies {
		hdr.Add("Vary", "Accept-Encoding")
	}
	if h.cacheControl != nil {
		hdr["Cache-Control"] = h.cacheControl
	}
	if cf == nil {
		hdr.Set("Etag", etag(fi, ""))
		http.ServeContent(w, r, name, fi.ModTime(), f)
		return
	}
	defer cf.Close()
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		var buf [512]byte
		n, _ := io.ReadFull(f, buf[:])
		ctype = http.DetectContentType(buf[:n])
	}
	hdr.Set("Content-Type", ctype)
	hdr.Set("Content-Encoding", enc)
	hdr.Set("Etag", etag(cfi, enc))
	http.ServeContent(&encodedWriter{ResponseWriter: w, size: cfi.Size()}, r, name, cfi.ModTime(), cf)
}

// encodedWriter completes what http.ServeContent writes for a
// precompressed file. ServeContent leaves Content-Length out of a 200 when
// Content-Encoding is set (for handlers that compress on the fly), but
// these bytes are final; and it keeps Content-Encoding on a 412, which
// has no body. Setting the header beforehand would declare a length for
// the empty 412.
type encodedWriter struct {
	http.ResponseWriter
	size int64
}

func (w *encodedWriter) WriteHeader(code int) {
	switch {
	case code == http.StatusOK:
		w.Header().Set("Content-Length", strconv.FormatInt(w.size, 10))
	case code >= 400:
		w.Header().Del("Content-Encoding")
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *encodedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
