package server

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// list answers with a small HTML page listing the directory f by name,
// without dotfiles, subdirectories ending in "/"; top leaves out the link
// to the parent. It reads at most h.maxList entries.
func (h *fileHandler) list(w http.ResponseWriter, r *http.Request, f *os.File, top bool) {
	entries, err := f.ReadDir(h.maxList + 1)
	if err != nil && err != io.EOF {
		fail(w, err)
		return
	}
	cut := len(entries) > h.maxList
	if cut {
		entries = entries[:h.maxList]
	}
	entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), ".") })
	slices.SortFunc(entries, func(a, b os.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })

	var b strings.Builder
	title := html.EscapeString(strings.ToValidUTF8(r.URL.Path, "\uFFFD"))
	b.WriteString("<!doctype html>\n<meta charset=\"utf-8\">\n<title>Index of " + title + "</title>\n<h1>Index of " + title + "</h1>\n<ul>\n")
	if !top {
		b.WriteString("<li><a href=\"../\">../</a>\n")
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			name += "/"
		}
		// url.URL writes "./a:b" for a name that would read as a scheme.
		href := (&url.URL{Path: name}).String()
		b.WriteString("<li><a href=\"" + html.EscapeString(href) + "\">" +
			html.EscapeString(strings.ToValidUTF8(name, "\uFFFD")) + "</a>\n")
	}
	b.WriteString("</ul>\n")
	if cut {
		b.WriteString("<p>Only " + strconv.Itoa(h.maxList) + " entries are listed.\n")
	}
	w.Header()["Content-Type"] = contentTypeHTML
	if r.Method != http.MethodHead {
		io.WriteString(w, b.String())
	}
}
