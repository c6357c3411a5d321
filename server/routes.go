package server

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// routes lists every HTTPS route; m records their requests.
func routes(m *serverMetrics) *httprouter.Router {
	r := httprouter.New()
	// Cleaning or slash-fixing redirects would send /hello/..%2Fhealthz or
	// /hello/a%2F to a different route or name; such paths are plain 404s.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.NotFound = http.HandlerFunc(notFound)

	hello := route(m.route("/hello/:name"), handleHello())
	r.GET("/hello/:name", hello)
	r.HEAD("/hello/:name", hello)
	healthz := route(m.route("/healthz"), handleHealthz())
	r.GET("/healthz", healthz)
	r.HEAD("/healthz", healthz)
	return r
}

// route has h's requests recorded in stats.
func route(stats *routeStats, h httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if rec, ok := w.(*recorder); ok {
			rec.route = stats
		}
		h(w, r, ps)
	}
}
