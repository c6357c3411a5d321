package server

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// defaultRoutes are the routes served when Options.Handler is nil: the
// Bottle app's /hello/:name. (/healthz is the server's own.)
func defaultRoutes() *Router {
	rt, err := NewRouter([]Route{{Path: "/hello/:name", Handle: Hello(), Name: "/hello/:name"}})
	if err != nil {
		panic("server: built-in routes: " + err.Error())
	}
	return rt
}

// Named labels the requests h answers with route name in the server's
// metrics (httpsd_http_requests_total{route}) and access log, for a
// handler of your own given as Options.Handler (NewRouter's routes are
// labelled already). Requests no Named handler answers count as
// "unmatched".
func Named(name string, h http.Handler) http.Handler {
	c := &compiledRoute{name: name}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		label(c, w, r)
		h.ServeHTTP(w, r)
	})
}

// NamedHandle is Named for an httprouter.Handle.
func NamedHandle(name string, h httprouter.Handle) httprouter.Handle {
	c := &compiledRoute{name: name}
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		label(c, w, r)
		h(w, r, ps)
	}
}

// label finds the server's recorder under w (middleware of your own may
// wrap it) and labels the request with c.
func label(c *compiledRoute, w http.ResponseWriter, r *http.Request) {
	for {
		switch v := w.(type) {
		case *recorder:
			v.use(c, r)
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return
		}
	}
}
