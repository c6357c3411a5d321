package server

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/julienschmidt/httprouter"
)

// Route sends the requests for a host and a path pattern to a handler.
type Route struct {
	// Host is a served name, "app.example.com" or "*.example.com"; ""
	// matches every host. A host's own routes replace those of every host
	// with the same pattern; otherwise the most specific pattern wins,
	// whichever host it names, so a host's "/*" gets what no other route
	// for that host matches. Give a route a Host to keep it off the others.
	Host string
	// Path is an httprouter pattern: "/hello/:name" (a segment),
	// "/static/*file" (the rest of the path), "/*" (everything this host
	// has no other route for). A catch-all beside more specific routes
	// works: the more specific route wins.
	Path string
	// Handler answers the route's requests; with Params, the pattern's
	// parameters are in the request's context (httprouter.ParamsFromContext).
	Handler http.Handler
	// Handle, when not nil, answers instead of Handler and gets the
	// parameters directly.
	Handle httprouter.Handle
	// Params puts the parameters in the context for Handler.
	Params bool
	// Stream marks a handler that streams (a reverse proxy, files): the
	// whole-request limits (Limits.ReadTimeout, WriteTimeout) do not
	// apply to its requests, only Limits.SendTimeout to each stall.
	Stream bool
	// Name labels the route's metrics and access log lines; "" means
	// Host+Path.
	Name string
}

// Router serves a table of Routes, by host, then path. Its zero value
// answers every request with 404; make one with NewRouter.
type Router struct {
	hosts map[string]*routeTable // exact host
	wild  map[string]*routeTable // ".example.com" for "*.example.com"
	any   *routeTable            // routes for every host
}

// routeTable holds one host's routes: an httprouter tree for the patterns
// it can hold, and the catch-alls under a plain prefix beside it
// (httprouter v1.3 refuses "/*" beside "/hello/:name").
type routeTable struct {
	tree      *httprouter.Router
	catchAlls []catchAll // longest prefix first
}

type catchAll struct {
	prefix string // ends with "/"
	param  string
	route  *compiledRoute
	serve  httprouter.Handle // route.serve, made once
}

// compiledRoute is a Route ready to serve.
type compiledRoute struct {
	name   string
	handle httprouter.Handle
	stream bool
	params bool                       // the handler wants the parameters
	stats  atomic.Pointer[routeStats] // for the metrics it was last resolved in
}

// serve answers a request of the route, labelled with it.
func (c *compiledRoute) serve(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if rec, ok := w.(*recorder); ok {
		rec.use(c, r)
	}
	c.handle(w, r, ps)
}

// anyMethod is the one method routes are registered under: methods are
// the handlers' business (a proxy passes them all on).
const anyMethod = "ANY"

// RouteError is a route that cannot be served: Index is its place in the
// list given to NewRouter, Other the route it conflicts with, or -1.
type RouteError struct {
	Index, Other int
	Msg          string
}

func (e *RouteError) Error() string { return "server: route " + fmt.Sprint(e.Index) + ": " + e.Msg }

// NewRouter checks routes and returns their Router. A route with no
// handler, a malformed pattern, /healthz (the server's own), two routes
// with the same host and pattern, and patterns httprouter cannot hold side
// by side are *RouteError.
func NewRouter(routes []Route) (*Router, error) {
	rt := &Router{hosts: map[string]*routeTable{}, wild: map[string]*routeTable{}}
	byHost := map[string][]int{}
	var hostOrder []string
	for i, r := range routes {
		if err := checkRoute(r); err != nil {
			return nil, &RouteError{Index: i, Other: -1, Msg: err.Error()}
		}
		h := normalizeHost(r.Host)
		if _, ok := byHost[h]; !ok {
			hostOrder = append(hostOrder, h)
		}
		byHost[h] = append(byHost[h], i)
	}
	var err error
	if rt.any, err = buildTable(routes, byHost[""], nil); err != nil {
		return nil, err
	}
	for _, h := range hostOrder {
		if h == "" {
			continue
		}
		t, err := buildTable(routes, byHost[h], byHost[""])
		if err != nil {
			return nil, err
		}
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			rt.wild[suffix] = t
		} else {
			rt.hosts[h] = t
		}
	}
	return rt, nil
}

func checkRoute(r Route) error {
	switch {
	case r.Handler == nil && r.Handle == nil:
		return fmt.Errorf("%s has no handler", r.Path)
	case !strings.HasPrefix(r.Path, "/"):
		return fmt.Errorf("path %q must start with /", r.Path)
	case r.Path == "/healthz":
		return fmt.Errorf("path /healthz is the server's own (liveness probes)")
	case strings.ContainsAny(r.Path, "?# \t"):
		return fmt.Errorf("path %q: want a path pattern, no query or spaces", r.Path)
	}
	if i := strings.IndexByte(r.Path, '*'); i >= 0 && (i == 0 || r.Path[i-1] != '/' || strings.ContainsAny(r.Path[i+1:], "/:*")) {
		return fmt.Errorf("path %q: a catch-all (*name) must be the last segment", r.Path)
	}
	return nil
}

// shape is a pattern with its parameter names left out: "/u/:" for
// "/u/:id", so that "/u/:id" and "/u/:name" count as the same route.
func shape(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if s != "" && (s[0] == ':' || s[0] == '*') {
			segs[i] = s[:1]
		}
	}
	return strings.Join(segs, "/")
}

// buildTable puts the routes own (by index) in a table, then those of
// every host (shared) whose shape none of own has.
func buildTable(routes []Route, own, shared []int) (*routeTable, error) {
	t := &routeTable{tree: httprouter.New()}
	t.tree.RedirectTrailingSlash, t.tree.RedirectFixedPath, t.tree.HandleMethodNotAllowed = false, false, false
	seen := map[string]int{} // shape -> index
	add := func(i int) error {
		r := routes[i]
		s := shape(r.Path)
		if j, dup := seen[s]; dup {
			return &RouteError{Index: i, Other: j, Msg: fmt.Sprintf("%s%s is already routed", r.Host, r.Path)}
		}
		seen[s] = i
		c := compile(r)
		if prefix, param, ok := plainCatchAll(r.Path); ok {
			t.catchAlls = append(t.catchAlls, catchAll{prefix: prefix, param: param, route: c, serve: c.serve})
			return nil
		}
		if msg := tryHandle(t.tree, r.Path, c.serve); msg != "" {
			return &RouteError{Index: i, Other: conflicting(routes, seen, i), Msg: fmt.Sprintf("%s%s conflicts with another route: %s", r.Host, r.Path, msg)}
		}
		return nil
	}
	for _, i := range own {
		if err := add(i); err != nil {
			return nil, err
		}
	}
	for _, i := range shared {
		if j, dup := seen[shape(routes[i].Path)]; dup && routes[j].Host != "" {
			continue // the host's own route replaces it
		}
		if err := add(i); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(t.catchAlls, func(a, b int) bool { return len(t.catchAlls[a].prefix) > len(t.catchAlls[b].prefix) })
	return t, nil
}

// plainCatchAll splits "/static/*file" into "/static/" and "file"; "/*"
// gives "/" and "path". ok is false for patterns with parameters before
// the catch-all, or none.
func plainCatchAll(path string) (prefix, param string, ok bool) {
	i := strings.IndexByte(path, '*')
	if i < 0 || strings.ContainsRune(path[:i], ':') {
		return "", "", false
	}
	param = path[i+1:]
	if param == "" {
		param = "path"
	}
	return path[:i], param, true
}

// tryHandle registers h under path, turning httprouter's panic on a
// conflict into its message.
func tryHandle(tree *httprouter.Router, path string, h httprouter.Handle) (msg string) {
	defer func() {
		if v := recover(); v != nil {
			msg = fmt.Sprint(v)
		}
	}()
	p := path
	if strings.HasSuffix(p, "/*") {
		p += "path"
	}
	tree.Handle(anyMethod, p, h)
	return ""
}

// conflicting finds which route registered before i conflicts with it.
func conflicting(routes []Route, seen map[string]int, i int) int {
	for _, j := range seen {
		if j == i {
			continue
		}
		if _, _, ok := plainCatchAll(routes[j].Path); ok {
			continue
		}
		tree := httprouter.New()
		tryHandle(tree, routes[j].Path, func(http.ResponseWriter, *http.Request, httprouter.Params) {})
		if tryHandle(tree, routes[i].Path, func(http.ResponseWriter, *http.Request, httprouter.Params) {}) != "" {
			return j
		}
	}
	return -1
}

func compile(r Route) *compiledRoute {
	c := &compiledRoute{name: r.Name, stream: r.Stream, handle: r.Handle, params: r.Handle != nil || r.Params}
	if c.name == "" {
		c.name = r.Host + r.Path
	}
	if c.handle == nil {
		h, params := r.Handler, r.Params
		c.handle = func(w http.ResponseWriter, req *http.Request, ps httprouter.Params) {
			if params && len(ps) > 0 {
				req = req.WithContext(context.WithValue(req.Context(), httprouter.ParamsKey, ps))
			}
			h.ServeHTTP(w, req)
		}
	}
	return c
}

// ServeHTTP answers r with the route for its host and path, or 404. A
// path with "." or ".." segments (which browsers never send, and which a
// route's handler or upstream might resolve outside the route) is not
// routed: see dotSegments.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if hasDotSegment(r.URL.Path) {
		dotSegments(w, r)
		return
	}
	h, ps := rt.lookup(hostOnly(r.Host), r.URL.Path)
	if h == nil {
		if r.Method == "OPTIONS" && r.URL.Path == "*" {
			return // OPTIONS * asks what the server supports: 200
		}
		notFound(w, r)
		return
	}
	h(w, r, ps)
}

// lookup finds the handle for host and path, and its parameters.
func (rt *Router) lookup(host, path string) (httprouter.Handle, httprouter.Params) {
	t := rt.table(host)
	if t == nil {
		return nil, nil
	}
	if h, ps, _ := t.tree.Lookup(anyMethod, path); h != nil {
		return h, ps
	}
	for _, ca := range t.catchAlls {
		if strings.HasPrefix(path, ca.prefix) {
			var ps httprouter.Params
			if ca.route.params {
				ps = httprouter.Params{{Key: ca.param, Value: path[len(ca.prefix)-1:]}}
			}
			return ca.serve, ps
		}
	}
	return nil, nil
}

func (rt *Router) table(host string) *routeTable {
	if len(rt.hosts) > 0 || len(rt.wild) > 0 {
		host = normalizeHost(host)
		if t := rt.hosts[host]; t != nil {
			return t
		}
		if dot := strings.IndexByte(host, '.'); dot > 0 {
			if t := rt.wild[host[dot:]]; t != nil {
				return t
			}
		}
	}
	return rt.any
}

// hasDotSegment reports whether p has a "." or ".." segment (decoded:
// "%2e%2e" counts).
func hasDotSegment(p string) bool {
	for i := strings.Index(p, "/."); i >= 0; {
		rest := p[i+2:]
		if rest == "" || rest[0] == '/' || rest[0] == '.' && (len(rest) == 1 || rest[1] == '/') {
			return true
		}
		j := strings.Index(rest, "/.")
		if j < 0 {
			return false
		}
		i += 2 + j
	}
	return false
}

// dotSegments answers a request whose path has dot segments, which is
// never routed: 404 when they were percent-encoded ("%2e%2e", "..%2f": no
// client needs to encode a dot or a slash to name a resource), 400 when ".."
// climbs above "/" (as nginx) or the method is not GET or HEAD, and
// otherwise a 308 to the path with them resolved.
func dotSegments(w http.ResponseWriter, r *http.Request) {
	// Resolved on the path as sent, so that an encoded character (%2F,
	// %3F) stays encoded in the Location and names the same resource.
	esc := r.URL.EscapedPath()
	switch {
	case !hasDotSegment(esc):
		notFound(w, r)
		return
	case climbsAboveRoot(esc):
		http.Error(w, "400 bad request: the path climbs above /", http.StatusBadRequest)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		http.Error(w, "400 bad request: the path has . or .. segments", http.StatusBadRequest)
		return
	}
	loc := path.Clean(esc)
	if loc != "/" && (strings.HasSuffix(esc, "/") || strings.HasSuffix(esc, "/.") || strings.HasSuffix(esc, "/..")) {
		loc += "/"
	}
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusPermanentRedirect)
}

// climbsAboveRoot reports whether the ".." segments of p outnumber the
// segments before them.
func climbsAboveRoot(p string) bool {
	depth := 0
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}
