package server

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkFiles measures GET of a 1 KiB file through Files, which opens
// its root anew for every request (os.OpenRoot), against http.FileServer
// on http.Dir (no containment of symlinks) and on an os.Root opened once
// (contained, but blind to a swapped root), without the network.
func BenchmarkFiles(b *testing.B) {
	root := b.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "css"), 0o755); err != nil {
		b.Fatal(err)
	}
	css := strings.Repeat("body { color: red }\n", 52)[:1024]
	for name, content := range map[string]string{"css/site.css": css, "css/site.css.br": css[:300], "css/plain.css": css} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	once, err := os.OpenRoot(root)
	if err != nil {
		b.Fatal(err)
	}
	defer once.Close()
	files, err := Files(FilesOptions{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name, path, acceptEncoding string
		h                          http.Handler
	}{
		{"FileServer-Dir", "/css/plain.css", "", http.FileServer(http.Dir(root))},
		{"FileServer-Root-once", "/css/plain.css", "", http.FileServerFS(once.FS())},
		{"Files", "/css/plain.css", "", files},
		{"Files-has-sibling", "/css/site.css", "", files},
		{"Files-br", "/css/site.css", "gzip, deflate, br, zstd", files},
		{"Files-browser-no-sibling", "/css/plain.css", "gzip, deflate, br, zstd", files},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", bc.path, nil)
			if bc.acceptEncoding != "" {
				r.Header.Set("Accept-Encoding", bc.acceptEncoding)
			}
			w := &nopWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				bc.h.ServeHTTP(w, r)
			}
		})
	}
	b.Run("OpenRoot+Close", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r, err := os.OpenRoot(root)
			if err != nil {
				b.Fatal(err)
			}
			r.Close()
		}
	})
}
