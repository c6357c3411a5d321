package server

import (
	"io"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/julienschmidt/httprouter"
)

// htmlEscaper escapes like Bottle's html_escape, which the original
// template used, so responses are byte-for-byte the same.
var htmlEscaper = strings.NewReplacer(
	"&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#039;",
)

var (
	contentTypeHTML = []string{"text/html; charset=UTF-8"}
	contentTypeText = []string{"text/plain; charset=utf-8"}
)

// Hello is the Bottle app's handler for a route /hello/:name: GET and
// HEAD get <b>Hello NAME</b>! as text/html, NAME HTML-escaped as Bottle
// escapes it and invalid UTF-8 replaced by U+FFFD, byte for byte what
// @route('/hello/<name>') with template('<b>Hello {{name}}</b>!') gives.
func Hello() httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if !getOrHead(w, r) {
			return
		}
		name := ps.ByName("name")
		if !utf8.ValidString(name) {
			name = strings.ToValidUTF8(name, "\uFFFD")
		}
		w.Header()["Content-Type"] = contentTypeHTML
		io.WriteString(w, "<b>Hello ")
		htmlEscaper.WriteString(w, name)
		io.WriteString(w, "</b>!")
	}
}

// serveHealthz answers ok while the process serves requests.
func serveHealthz(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = contentTypeText
	h["Cache-Control"] = noStore
	io.WriteString(w, "ok\n")
}

var (
	noStore      = []string{"no-store"}
	allowGetHead = []string{"GET, HEAD, OPTIONS"}
)

// getOrHead reports whether r is a GET or HEAD; it answers any other
// method: OPTIONS with the methods allowed, others 405.
func getOrHead(w http.ResponseWriter, r *http.Request) bool {
	switch r.Method {
	case "GET", "HEAD":
		return true
	case "OPTIONS":
		w.Header()["Allow"] = allowGetHead
		return false
	}
	w.Header()["Allow"] = allowGetHead
	http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
	return false
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "404 not found", http.StatusNotFound)
}
