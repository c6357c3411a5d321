package server_test

import (
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/httpsd/httpsd/server"
	"github.com/julienschmidt/httprouter"
)

// ExampleFiles serves the directory root under /static/, as nginx's
// "location /static/ { alias root/; }" does.
func ExampleFiles() {
	root, err := os.MkdirTemp("", "static")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	os.WriteFile(filepath.Join(root, "site.css"), []byte("body { color: red }\n"), 0o644)

	files, err := server.Files(server.FilesOptions{
		Root:         root,
		Param:        "file", // the name after * in the route
		CacheControl: "public, max-age=3600",
	})
	if err != nil {
		log.Fatal(err)
	}
	router := httprouter.New()
	router.Handler("GET", "/static/*file", files)
	router.Handler("HEAD", "/static/*file", files)

	for _, path := range []string{"/static/site.css", "/static/../secret", "/static/missing.css"} {
		w := httptest.NewRecorder()
		router.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		fmt.Printf("%s: %d %q (%s)\n", path, w.Code, w.Body, w.Header().Get("Content-Type"))
	}
	// Output:
	// /static/site.css: 200 "body { color: red }\n" (text/css; charset=utf-8)
	// /static/../secret: 404 "404 not found\n" (text/plain; charset=utf-8)
	// /static/missing.css: 404 "404 not found\n" (text/plain; charset=utf-8)
}
