package server

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// routes lists every HTTPS route.
func routes() *httprouter.Router {
	r := httprouter.New()
	// Cleaning or slash-fixing redirects would send /hello/..%2Fhealthz or
	// /hello/a%2F to a different route or name; such paths are plain 404s.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.NotFound = http.HandlerFunc(notFound)

	r.GET("/hello/:name", handleHello())
	r.HEAD("/hello/:name", handleHello())
	r.GET("/healthz", handleHealthz())
	r.HEAD("/healthz", handleHealthz())
	return r
}

// appHandler is the whole HTTPS handler: the routes behind the middleware.
func appHandler(opts Options, hosts hostSet) http.Handler {
	return middleware(opts, hosts, routes())
}

// middleware wraps h in what every HTTPS response passes through, outermost
// first: access log, security headers, panic recovery, host check.
func middleware(opts Options, hosts hostSet, h http.Handler) http.Handler {
	h = checkHost(hosts, h)
	h = recoverPanic(opts.Logger, h)
	h = secureHeaders(opts.HSTSMaxAge, h)
	if opts.AccessLog {
		h = accessLog(opts.Logger, h)
	}
	return h
}
