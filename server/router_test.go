package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestRouterPrecedence: a host's own routes replace those of every host
// with the same pattern; otherwise the most specific pattern wins, so a
// host's "/*" gets only what no other route matches.
func TestRouterPrecedence(t *testing.T) {
	h := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
	}
	rt, err := NewRouter([]Route{
		{Path: "/hello/:name", Handler: h("shared hello")},
		{Path: "/static/*file", Handler: h("shared static")},
		{Host: "app.example.com", Path: "/*", Handler: h("app")},
		{Host: "api.example.com", Path: "/v1/:id", Handler: h("api v1")},
		{Host: "api.example.com", Path: "/hello/:who", Handler: h("api hello")},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ host, path, want string }{
		{"app.example.com", "/hello/bob", "shared hello"},
		{"app.example.com", "/static/a.css", "shared static"},
		{"app.example.com", "/other", "app"},
		{"api.example.com", "/v1/7", "api v1"},
		{"api.example.com", "/hello/bob", "api hello"},
		{"api.example.com", "/static/a.css", "shared static"},
		{"www.example.com", "/hello/bob", "shared hello"},
		{"www.example.com", "/other", "404 not found\n"},
	} {
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, httptest.NewRequest("GET", "https://"+tt.host+tt.path, nil))
		if got := w.Body.String(); got != tt.want {
			t.Errorf("GET https://%s%s = %q, want %q", tt.host, tt.path, got, tt.want)
		}
	}
}

// TestDotSegments: a path with . or .. segments (encoded or not) is never
// routed, so that it cannot reach past its route to a handler or upstream
// that would resolve it: GET is redirected to the resolved path, POST
// gets 400, encoded ones 404 and climbing above / 400.
func TestDotSegments(t *testing.T) {
	reached := ""
	rt, err := NewRouter([]Route{{Path: "/public/*", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = r.URL.Path
	})}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, target string
		status         int
		location       string
	}{
		{"GET", "/public/../admin/secret", 308, "/admin/secret"},
		{"GET", "/public/a/../b?x=1", 308, "/public/b?x=1"},
		{"GET", "/public/%2e%2e/admin?x=1", 404, ""},
		{"GET", "/public/..%2fadmin", 404, ""},
		{"POST", "/public/%2E/a", 404, ""},
		{"GET", "/public/../../etc/passwd", 400, ""},
		{"GET", "/public/./a/", 308, "/public/a/"},
		{"HEAD", "/public/a/..", 308, "/public/"},
		{"POST", "/public/../admin", 400, ""},
		{"GET", "/public/.well-known/x", 200, ""},
		{"GET", "/public/..hidden/a", 200, ""},
		{"GET", "/x/../a%2Fb%3F?q=1", 308, "/a%2Fb%3F?q=1"}, // encoded characters stay encoded
		{"GET", "//x/../a", 308, "/a"},                      // never "//a", another host to a browser
		{"GET", "/\\evil.com/../x/..", 308, "/"},
		{"GET", "/a\\/../b", 308, "/b"},
	} {
		reached = ""
		w := httptest.NewRecorder()
		r := httptest.NewRequest(tt.method, "https://example.com/", nil)
		u, err := url.ParseRequestURI(tt.target) // as net/http reads it: dot segments kept
		if err != nil {
			t.Fatal(err)
		}
		r.URL, r.RequestURI = u, tt.target
		rt.ServeHTTP(w, r)
		if w.Code != tt.status || w.Header().Get("Location") != tt.location {
			t.Errorf("%s %s = %d Location %q, want %d %q", tt.method, tt.target, w.Code, w.Header().Get("Location"), tt.status, tt.location)
		}
		if (reached != "") != (tt.status == 200) {
			t.Errorf("%s %s reached the route with %q, want it to only when answered 200", tt.method, tt.target, reached)
		}
	}
}
