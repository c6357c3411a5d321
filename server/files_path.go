package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/julienschmidt/httprouter"
)

// path returns the slash-separated name under the root that r asks for
// ("." for the root itself) and whether it ended in a slash. ok is false
// for a path that is never served: one with a segment starting with "."
// (but .well-known, RFC 8615: security.txt and the like), a backslash, a
// NUL, or a separator encoded in the URL.
func (h *fileHandler) path(r *http.Request) (name string, slash, ok bool) {
	p := r.URL.Path
	if h.param != "" {
		if p, ok = paramValue(r, h.param); !ok {
			panic(fmt.Sprintf("server: files: no route parameter %q in the request for %s: mount the handler on an httprouter route such as /static/*%[1]s", h.param, r.URL.Path))
		}
		if !strings.HasPrefix(p, "/") {
			p = "/" + p // a :name parameter
		}
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") || encodedSeparator(r.URL.RawPath) {
		return "", false, false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg != "" && seg[0] == '.' && seg != ".well-known" {
			return "", false, false
		}
	}
	// With no "." or ".." segments left, Clean only merges slashes.
	name = path.Clean(p)[1:]
	if name == "" {
		name = "."
	}
	return name, strings.HasSuffix(p, "/"), true
}

// paramValue returns the value of r's httprouter parameter key and
// whether r has it.
func paramValue(r *http.Request, key string) (string, bool) {
	for _, p := range httprouter.ParamsFromContext(r.Context()) {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// encodedSeparator reports whether the escaped path raw holds %2F or %5C,
// in either case.
func encodedSeparator(raw string) bool {
	for {
		i := strings.IndexByte(raw, '%')
		if i < 0 || i+2 >= len(raw) {
			return false
		}
		if hex := raw[i+1 : i+3]; strings.EqualFold(hex, "2f") || strings.EqualFold(hex, "5c") {
			return true
		}
		raw = raw[i+1:]
	}
}

// open opens name in root, without blocking on a FIFO, and returns it with
// its FileInfo when it is a regular file or a directory; anything else is
// fs.ErrNotExist.
func open(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	f, err := root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|openFlags, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		err = fs.ErrNotExist
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// fail answers an error opening a file: 403 when the server may not read
// it, else 404 (missing, outside the root, a symlink loop, ...). The body
// never names the path.
func fail(w http.ResponseWriter, err error) {
	if errors.Is(err, fs.ErrPermission) {
		http.Error(w, "403 forbidden", http.StatusForbidden)
		return
	}
	http.Error(w, "404 not found", http.StatusNotFound)
}
