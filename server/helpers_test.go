package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// eventually polls cond every 10ms until it holds or timeout passes, and
// reports whether it held: tests wait on conditions, not on time.
func eventually(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// clientFrom returns a client of ts whose connections come from the
// loopback address from (such as 127.0.0.2), as another machine's would.
func (ts *testServer) clientFrom(from string) *http.Client {
	tr := ts.client.Transport.(*http.Transport).Clone()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, ts.addr)
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// timedGets GETs path n times with client and returns the latencies of
// the answers that were 200, sorted, and how many were not.
func timedGets(client *http.Client, url string, n int) (lat []time.Duration, failed int) {
	for range n {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			failed++
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failed++
			continue
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, failed
}

// h2Raw is an HTTP/2 client connection driven frame by frame, for attacks
// that no well-behaved client library makes.
type h2Raw struct {
	acked chan struct{} // closed once discard has acknowledged the server's settings
	mu    sync.Mutex    // guards writes: discard acknowledges settings meanwhile
	c     *tls.Conn
	fr    *http2.Framer
	enc   *hpack.Encoder
	buf   bytes.Buffer
	id    uint32
}

// dialH2 opens an HTTP/2 connection to addr (from the loopback address
// from, when not "") and sends the preface and settings.
func dialH2(t *testing.T, addr, from string, settings ...http2.Setting) *h2Raw {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("dial h2: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	h := &h2Raw{c: c, fr: http2.NewFramer(c, c), id: 1, acked: make(chan struct{})}
	h.enc = hpack.NewEncoder(&h.buf)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return h
}

// get sends a GET for path on a new stream and returns the stream's ID.
func (h *h2Raw) get(path string) (uint32, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.buf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", path}} {
		h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	id := h.id
	h.id += 2
	return id, h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.buf.Bytes(), EndStream: true, EndHeaders: true})
}

// discard reads and drops the server's frames, acknowledging its
// SETTINGS, until the connection ends; it never grants flow control.
func (h *h2Raw) discard() {
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			return
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			h.mu.Lock()
			h.fr.WriteSettingsAck()
			h.mu.Unlock()
			select {
			case <-h.acked:
			default:
				close(h.acked)
			}
		}
	}
}

// write sends one frame through f, under the write lock.
func (h *h2Raw) write(f func(*http2.Framer) error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return f(h.fr)
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// h1Client returns a client of ts that speaks HTTP/1.1 only.
func (ts *testServer) h1Client() *http.Client {
	tr := ts.client.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	tr.TLSClientConfig = tr.TLSClientConfig.Clone()
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// dialH1 opens a TLS connection to ts that speaks HTTP/1.1, closed when
// the test ends.
func (ts *testServer) dialH1(t testing.TB) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", ts.addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
