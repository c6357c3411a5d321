//go:build linux || darwin

package server

import (
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestFilesFIFO: a FIFO under the root is refused at once; opening it
// plainly would wait for a writer, holding the request and its slot.
func TestFilesFIFO(t *testing.T) {
	root, _ := filesTree(t)
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := Files(FilesOptions{Root: root, Param: "file"})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/static/fifo", "/static/fifo/"} {
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() {
			w := httptest.NewRecorder()
			filesRouter(h).ServeHTTP(w, httptest.NewRequest("GET", target, nil))
			done <- w
		}()
		select {
		case w := <-done:
			if w.Code != 404 {
				t.Errorf("GET %s = %d, want 404", target, w.Code)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("GET %s still waiting after 10s, want 404 at once", target)
		}
	}
}
