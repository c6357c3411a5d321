package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/httpsd/httpsd/metrics"
	"golang.org/x/net/http2"
)

// rawTLS sends raw bytes on a new HTTP/1.1 connection to ts and returns
// the responses read until there are n or the server closes the
// connection.
func rawTLS(t *testing.T, ts *testServer, request string, n int) []*http.Response {
	t.Helper()
	c := ts.dialH1(t)
	defer c.Close() // now: callers make many
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	var out []*http.Response
	br := bufio.NewReader(c)
	for len(out) < n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(body))
		out = append(out, resp)
	}
	return out
}

func TestSmugglingClosesConnection(t *testing.T) {
	ts := newTestServer(t, Options{}, nil)
	body := "0\r\n\r\nGET /hello/SMUGGLED HTTP/1.1\r\nHost: localhost\r\n\r\n"
	for _, tt := range []struct {
		name, request string
		want          []int
	}{
		{"Content-Length and Transfer-Encoding",
			"POST /hello/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 47\r\nTransfer-Encoding: chunked\r\n\r\n" + body, []int{405}},
		{"names in another case, in the other order",
			"POST /hello/x HTTP/1.1\r\nHost: localhost\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH: 47\r\n\r\n" + body, []int{405}},
		// Both requests arrive in one read, seen before the first is
		// answered: the connection is closed after the first.
		{"behind a first, normal request",
			"GET /hello/a HTTP/1.1\r\nHost: localhost\r\n\r\n" +
				"POST /hello/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 47\r\nTransfer-Encoding: chunked\r\n\r\n" + body, []int{200}},
		{"chunked alone keeps the connection",
			"POST /hello/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" + body, []int{405, 200}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			n := len(tt.want) + 1 // one more than expected: the connection must end first
			if strings.Contains(tt.name, "keeps") {
				n = len(tt.want)
			}
			for _, resp := range rawTLS(t, ts, tt.request, n) {
				got = append(got, resp.StatusCode)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("responses = %v, want %v (the smuggled GET must not be answered)", got, tt.want)
			}
		})
	}
}

func TestOptionsStarAndOwnResponses(t *testing.T) {
	reg := new(metrics.Registry)
	var logs syncBuffer
	ts := newTestServer(t, Options{Metrics: reg, HSTSMaxAge: time.Hour, AccessLog: true, AccessLogWriter: &logs}, nil)
	for _, tt := range []struct {
		name, request string
		status        int
		hsts          bool
	}{
		{"OPTIONS * for a served host", "OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n", 200, true},
		{"OPTIONS * for another host", "OPTIONS * HTTP/1.1\r\nHost: evil.example\r\n\r\n", 421, true},
		{"malformed header", "GET /hello/x HTTP/1.1\r\nHost: localhost\r\nno colon here\r\n\r\n", 400, false},
		{"unsupported transfer encoding", "POST /hello/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n", 501, false},
		{"unsupported version", "GET /hello/x HTTP/3.0\r\nHost: localhost\r\n\r\n", 505, false},
		{"headers over net/http's own cap", "GET /hello/x HTTP/1.1\r\nHost: localhost\r\nX-Big: " + strings.Repeat("a", 40<<10) + "\r\n\r\n", 431, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resps := rawTLS(t, ts, tt.request, 1)
			if len(resps) == 0 {
				t.Fatalf("%s: no response", tt.request[:20])
			}
			resp := resps[0]
			if resp.StatusCode != tt.status {
				t.Errorf("%q = %d, want %d", tt.request[:min(30, len(tt.request))], resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Strict-Transport-Security") != ""; got != tt.hsts {
				t.Errorf("%q: HSTS header sent = %v, want %v", tt.request[:20], got, tt.hsts)
			}
			code := fmt.Sprint(tt.status)
			if !eventually(2*time.Second, func() bool { return strings.Contains(logs.String(), "status="+code) }) {
				t.Errorf("no access log line with status=%s:\n%s", code, logs.String())
			}
			if tt.status != 200 {
				if got := counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": code}); got < 1 {
					t.Errorf("httpsd_rejections_total{reason=%s} = %v, want it counted", code, got)
				}
			}
		})
	}
	t.Run("OPTIONS * over HTTP/2", func(t *testing.T) {
		req, _ := http.NewRequest("OPTIONS", ts.url, nil)
		req.URL.Opaque = "*"
		resp, err := ts.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("OPTIONS * = %d over %s, nosniff %q; want 200 over HTTP/2.0 with nosniff",
				resp.StatusCode, resp.Proto, resp.Header.Get("X-Content-Type-Options"))
		}
	})
}

// TestHTTP2Flood sends control frames as fast as it can: the connection
// is cut after a bounded number, counted, while a normal HTTP/2 client
// (here downloading, which makes it send WINDOW_UPDATE frames in step) is
// not cut.
func TestHTTP2Flood(t *testing.T) {
	reg := new(metrics.Registry)
	var logs syncBuffer
	mux := http.NewServeMux()
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 256 { // 16 MiB
			w.Write(chunk)
		}
	})
	ts := newTestServer(t, Options{Metrics: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, mux)
	nextID := uint32(1)
	headers := func(fr *http2.Framer, endHeaders bool) error { // a block without :path
		nextID += 2
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: nextID, BlockFragment: []byte{0x82}, EndStream: true, EndHeaders: endHeaders})
	}
	continued := false
	for _, tt := range []struct {
		name  string
		frame func(*http2.Framer) error
	}{
		{"SETTINGS", func(fr *http2.Framer) error { return fr.WriteSettings() }},
		// Frames the server answers with RST_STREAM: DATA on a closed
		// stream, HEADERS missing a pseudo-header.
		{"DATA on a closed stream", func(fr *http2.Framer) error { return fr.WriteData(1, false, []byte{0}) }},
		{"malformed HEADERS", func(fr *http2.Framer) error { return headers(fr, true) }},
		{"empty CONTINUATION", func(fr *http2.Framer) error {
			if !continued {
				continued = true
				return headers(fr, false)
			}
			return fr.WriteContinuation(nextID, false, nil)
		}},
		{"PING", func(fr *http2.Framer) error { return fr.WritePing(false, [8]byte{1}) }},
		{"PRIORITY", func(fr *http2.Framer) error {
			return fr.WritePriority(3, http2.PriorityParam{StreamDep: 1, Weight: 1})
		}},
		{"WINDOW_UPDATE", func(fr *http2.Framer) error { return fr.WriteWindowUpdate(0, 1) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := dialH2(t, ts.addr, "")
			done := make(chan struct{})
			go func() { h.discard(); close(done) }()
			if _, err := h.get("/hello/x"); err != nil { // stream 1, closed once answered
				t.Fatal(err)
			}
			<-h.acked // no SETTINGS ack may land inside a header block
			nextID = 1
			before := counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": "h2_flood"})
			sent := 0
			for ; sent < 1_000_000; sent++ {
				if err := h.write(tt.frame); err != nil {
					break
				}
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("connection still open after %d %s frames", sent, tt.name)
			}
			t.Logf("%s flood: connection closed after %d frames sent", tt.name, sent)
			if after := counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": "h2_flood"}); after != max(before, 0)+1 {
				t.Errorf("httpsd_rejections_total{reason=h2_flood} went from %v to %v, want the connection cut by the flood guard", before, after)
			}
			if sent >= 1_000_000 {
				t.Errorf("a million %s frames went through, want the connection cut", tt.name)
			}
		})
	}
	if !strings.Contains(logs.String(), "flooding") {
		t.Errorf("no log line about the flood:\n%s", logs.String())
	}
	// Downloads on one connection: the client's WINDOW_UPDATE frames
	// follow the data, in a burst after each large write.
	for range 4 {
		resp, err := ts.client.Get(ts.url + "/big")
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != 16<<20 || resp.Proto != "HTTP/2.0" {
			t.Fatalf("GET /big over %s = %d bytes, %v; want 16 MiB over HTTP/2.0", resp.Proto, n, err)
		}
	}
}
