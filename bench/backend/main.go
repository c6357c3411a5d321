// Command backend is the small fast app the proxy benchmarks put behind
// httpsd, nginx and Caddy: plain HTTP on loopback, answering
// GET /hello/NAME with <b>Hello NAME</b>! as the Bottle app does, so that
// what is measured is the proxy.
package main

import (
	"flag"
	"html"
	"log"
	"net/http"
	"strings"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9050", "listen address")
	flag.Parse()
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, "/hello/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.Write([]byte("<b>Hello " + html.EscapeString(name) + "</b>!"))
	})))
}
