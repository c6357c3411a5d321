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

// handleHello answers /hello/:name with <b>Hello NAME</b>!, NAME
// HTML-escaped and invalid UTF-8 replaced by U+FFFD.
func handleHello() httprouter.Handle {
	return func(w http.ResponseWriter, _ *http.Request, ps httprouter.Params) {
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

// handleHealthz answers ok while the process serves requests.
func handleHealthz() httprouter.Handle {
	return func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		h := w.Header()
		h["Content-Type"] = contentTypeText
		h["Cache-Control"] = []string{"no-store"}
		io.WriteString(w, "ok\n")
	}
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "404 not found", http.StatusNotFound)
}
