package server

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAnswerHeaders: what a handler writes reaches the client as net/http
// would send it, over HTTP/1.1 and HTTP/2, though httpsd holds answers
// back while the client reads: a Content-Length whenever the whole answer
// is known, a WriteHeader after Write ignored (and the access log telling
// the status the client got), informational answers (103) not taken for
// the status.
func TestAnswerHeaders(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		status  int
		length  string // the Content-Length header; "": none
	}{
		{"small", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, strings.Repeat("x", 100)) }, 200, "100"},
		{"empty", func(w http.ResponseWriter, r *http.Request) {}, 200, "0"},
		{"201 then 5000 bytes", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, strings.Repeat("x", 5000))
		}, 201, "5000"},
		{"late WriteHeader", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, strings.Repeat("x", 3000))
			w.WriteHeader(http.StatusInternalServerError)
		}, 200, "3000"},
		{"103 then 404", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			http.NotFound(w, r)
		}, 404, "19"},
		{"204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }, 204, ""},
		{"trailers", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "abc")
			w.Header().Set("X-Sum", "3")
		}, 200, ""},
	} {
		var log syncBuffer
		ts := newTestServer(t, Options{AccessLog: true, AccessLogWriter: &log}, tt.handler)
		for _, c := range []struct {
			proto  string
			client *http.Client
		}{{"HTTP/1.1", ts.h1Client()}, {"HTTP/2.0", ts.client}} {
			t.Run(tt.name+" "+c.proto, func(t *testing.T) {
				resp, err := c.client.Get(ts.url + "/x")
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.Proto != c.proto {
					t.Fatalf("GET /x over %s, want %s", resp.Proto, c.proto)
				}
				if cl := resp.Header.Get("Content-Length"); resp.StatusCode != tt.status || cl != tt.length {
					t.Errorf("GET /x = %d with Content-Length %q, want %d with %q", resp.StatusCode, cl, tt.status, tt.length)
				}
				if tt.name == "trailers" && resp.Trailer.Get("X-Sum") != "3" {
					t.Errorf("GET /x trailer X-Sum = %q, want 3", resp.Trailer.Get("X-Sum"))
				}
				want := fmt.Sprintf("status=%d", tt.status)
				if !eventually(5*time.Second, func() bool { return strings.Contains(log.String(), "proto="+c.proto) }) ||
					!strings.Contains(log.String(), want) {
					t.Errorf("access log %q, want %s", log.String(), want)
				}
			})
		}
	}
}

// TestPanicAfterPartialAnswer: a handler that panics after writing is
// answered 500 when none of its answer has gone out (HTTP/2 holds it all
// back), and its connection or stream is cut otherwise, never with a 500
// text appended to a 200 body.
func TestPanicAfterPartialAnswer(t *testing.T) {
	ts := newTestServer(t, Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial ")
		panic("boom")
	}))
	resp, err := ts.client.Get(ts.url + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || strings.Contains(string(body), "partial") {
		t.Errorf("GET /x over HTTP/2 = %d %q, want 500 without the partial answer", resp.StatusCode, body)
	}
	resp, err = ts.h1Client().Get(ts.url + "/x")
	if err == nil {
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 500 || strings.Contains(string(body), "partial") {
			t.Errorf("GET /x over HTTP/1.1 = %d %q, want the connection cut or 500 alone", resp.StatusCode, body)
		}
	}
}

// TestHijackedConn: a hijacked connection (a WebSocket) lives as long as
// data moves either way: a server that pushes to a client that sends
// nothing is not cut at IdleTimeout; the ReadWriter returned starts with
// what the client sent along with its request; and a connection where
// nothing moves ends after IdleTimeout.
func TestHijackedConn(t *testing.T) {
	const idle = 500 * time.Millisecond
	result := make(chan string, 1)
	ts := newTestServer(t, Options{Limits: Limits{IdleTimeout: idle}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			result <- err.Error()
			return
		}
		defer c.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		ahead, err := rw.ReadString('\n')
		if err != nil || ahead != "sent-with-request\n" {
			result <- fmt.Sprintf("read %q, %v; want what came with the request", ahead, err)
			return
		}
		if r.URL.Path == "/silent" {
			start := time.Now()
			_, err := c.Read(make([]byte, 1))
			result <- fmt.Sprintf("silent: read ended after %v: %v", time.Since(start).Round(100*time.Millisecond), err)
			return
		}
		for start := time.Now(); time.Since(start) < 4*idle; time.Sleep(idle / 10) {
			if _, err := rw.WriteString("push\n"); err != nil {
				result <- fmt.Sprintf("push: %v", err)
				return
			}
			if err := rw.Flush(); err != nil {
				result <- fmt.Sprintf("push: %v", err)
				return
			}
		}
		result <- "pushed for 4 × IdleTimeout"
	}))
	for _, path := range []string{"/push", "/silent"} {
		t.Run(path, func(t *testing.T) {
			c := ts.dialH1(t)
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nsent-with-request\n", path)
			go io.Copy(io.Discard, c)
			var got string
			select {
			case got = <-result:
			case <-time.After(30 * time.Second):
				t.Fatal("the hijacking handler never ended")
			}
			switch {
			case path == "/push" && got != "pushed for 4 × IdleTimeout":
				t.Errorf("server pushing to a client that sends nothing: %s, want it to push for 4 × IdleTimeout", got)
			case path == "/silent" && !strings.Contains(got, "timeout"):
				t.Errorf("%s, want a timeout after IdleTimeout", got)
			}
		})
	}
}

// TestUploadThenSlowAnswer: on a streaming route (a proxy), an upload
// that pauses and then ends, answered after longer than SendTimeout, is
// not cancelled: the read deadline that follows the upload's progress is
// lifted once the body has ended.
func TestUploadThenSlowAnswer(t *testing.T) {
	const send = 500 * time.Millisecond
	done := make(chan error, 1)
	rt, err := NewRouter([]Route{{Path: "/*", Stream: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		select {
		case <-time.After(3 * send):
		case <-r.Context().Done():
		}
		done <- r.Context().Err()
		io.WriteString(w, "processed")
	})}})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, Options{Handler: rt, Limits: Limits{SendTimeout: send}}, nil)
	c := ts.dialH1(t)
	io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n12345")
	time.Sleep(send / 2) // a pause in the upload, the deadline moved once
	io.WriteString(c, "67890")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("POST /upload: %v", err)
	}
	resp.Body.Close()
	if err := <-done; err != nil || resp.StatusCode != 200 {
		t.Errorf("POST /upload = %d, request context %v; want 200 and the request not cancelled", resp.StatusCode, err)
	}
}
