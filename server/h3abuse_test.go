package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/httpsd/httpsd/metrics"
)

// dialMany opens n QUIC connections from the loopback address from at
// once, completing their handshakes, and returns those that succeeded and
// how many were refused.
func dialMany(t *testing.T, hs *h3TestServer, from string, n int) (conns []*quic.Conn, refused int) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			c, err := hs.dialQUIC(ctx, from, hs.clientTLS(), &quic.Config{})
			if err == nil {
				select {
				case <-c.HandshakeComplete():
				case <-c.Context().Done():
					err = context.Cause(c.Context())
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused++
				return
			}
			conns = append(conns, c)
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			c.CloseWithError(0, "")
		}
	})
	return conns, refused
}

// TestH3ConnsPerIP: a client opening many QUIC connections at once gets
// max_conns_per_ip of them (the ones past half its share after a Retry),
// the rest are refused, and another client is served meanwhile.
func TestH3ConnsPerIP(t *testing.T) {
	reg := new(metrics.Registry)
	hs := newH3TestServer(t, Options{Metrics: reg, Limits: Limits{MaxConnsPerIP: 8}})
	conns, refused := dialMany(t, hs, "127.0.0.2", 40)
	t.Logf("40 QUIC connections from one address: %d open, %d refused", len(conns), refused)
	if len(conns) > 8 || len(conns) < 4 || refused < 32 {
		t.Errorf("40 connections from 127.0.0.2 with max_conns_per_ip 8: %d open, %d refused; want at most 8 open, the rest refused", len(conns), refused)
	}
	client, _ := hs.h3Client(t, "")
	start := time.Now()
	resp, err := client.Get(hs.url + "/hello/other")
	if err != nil {
		t.Fatalf("another client during the flood: %v", err)
	}
	resp.Body.Close()
	t.Logf("another client's GET over HTTP/3: %d in %v", resp.StatusCode, time.Since(start).Round(time.Millisecond))
	if resp.StatusCode != 200 {
		t.Errorf("another client's GET = %d, want 200", resp.StatusCode)
	}
	if got := counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": "conn_per_ip"}); got < 32 {
		t.Errorf("httpsd_rejections_total{reason=conn_per_ip} = %v, want at least 32", got)
	}
	if got := counterValue(t, reg, "httpsd_quic_retries_total", map[string]string{"reason": "per_ip"}); got < 1 {
		t.Errorf("httpsd_quic_retries_total{reason=per_ip} = %v, want Retries once the address held half its share", got)
	}
}

// TestH3ConnsGlobal: QUIC and TCP connections share max_conns; with every
// connection busy, a new QUIC connection is refused.
func TestH3ConnsGlobal(t *testing.T) {
	reg := new(metrics.Registry)
	block := make(chan struct{})
	started := make(chan struct{}, 4)
	mux := http.NewServeMux()
	mux.HandleFunc("/block", func(http.ResponseWriter, *http.Request) {
		started <- struct{}{}
		<-block
	})
	hs := newH3TestServer(t, Options{Metrics: reg, Handler: mux, Limits: Limits{MaxConns: 3}})
	t.Cleanup(func() { close(block) })
	busy := func(c *http.Client) {
		go func() {
			if resp, err := c.Get(hs.url + "/block"); err == nil {
				resp.Body.Close()
			}
		}()
		<-started
	}
	for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
		c, _ := hs.h3Client(t, from)
		busy(c)
	}
	busy(hs.clientFrom("127.0.0.4")) // HTTP/2 over TCP
	if n := hs.OpenConns(); n != 3 {
		t.Fatalf("open connections = %d, want 3 (2 QUIC, 1 TCP)", n)
	}
	if conns, refused := dialMany(t, hs, "127.0.0.5", 1); len(conns) != 0 || refused != 1 {
		t.Errorf("a fourth connection with max_conns 3 all busy: %d open, %d refused; want it refused", len(conns), refused)
	}
	if got := counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": "max_conns"}); got < 1 {
		t.Errorf("httpsd_rejections_total{reason=max_conns} = %v, want at least 1", got)
	}
}

// TestH3Retry: with QUICRetryAbove negative every new connection proves
// its address with a Retry first, and is served.
func TestH3Retry(t *testing.T) {
	reg := new(metrics.Registry)
	hs := newH3TestServer(t, Options{Metrics: reg, Limits: Limits{QUICRetryAbove: -1}})
	client, _ := hs.h3Client(t, "")
	resp, err := client.Get(hs.url + "/hello/retry")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET after a Retry = %d, want 200", resp.StatusCode)
	}
	// At least one: a ClientHello with a post-quantum key share takes two
	// Initial packets, and each is asked for a Retry.
	if got := counterValue(t, reg, "httpsd_quic_retries_total", map[string]string{"reason": "rate"}); got < 1 {
		t.Errorf("httpsd_quic_retries_total{reason=rate} = %v, want at least 1", got)
	}
}

// TestH3CertificateRotation: new QUIC connections get the certificate the
// source holds now; an open one carries on.
func TestH3CertificateRotation(t *testing.T) {
	var cur atomic.Pointer[tls.Certificate]
	cur.Store(newProbe().cert)
	hs := newH3TestServer(t, Options{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cur.Load(), nil }})
	served := func() (*quic.Conn, []byte) {
		conf := hs.clientTLS()
		conf.InsecureSkipVerify = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := hs.dialQUIC(ctx, "", conf, &quic.Config{})
		if err != nil {
			t.Fatal(err)
		}
		<-c.HandshakeComplete()
		return c, c.ConnectionState().TLS.PeerCertificates[0].Raw
	}
	old, first := served()
	defer old.CloseWithError(0, "")
	next := newProbe().cert
	cur.Store(next)
	c, second := served()
	c.CloseWithError(0, "")
	if string(first) == string(second) || string(second) != string(next.Certificate[0]) {
		t.Error("a QUIC connection after rotation got the old certificate")
	}
	if old.Context().Err() != nil {
		t.Error("the connection opened before rotation was closed")
	}
}

// TestH3MemoryPerConn measures what QUIC connections whose requests send
// bodies nobody reads make the server hold: each connection opens its
// 100 streams, each POSTs 1 MiB to a handler that never reads, so the
// flow-control windows fill. The clients run in another process (this
// test binary, as TestH3UploadHelper), so the figure is the server's own
// heap and stacks.
func TestH3MemoryPerConn(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	const conns, streams = 4, 100
	block := make(chan struct{})
	var inHandler, bodyFlowing atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/upload", func(_ http.ResponseWriter, r *http.Request) {
		inHandler.Add(1)
		if _, err := r.Body.Read(make([]byte, 1)); err == nil {
			bodyFlowing.Add(1)
		}
		<-block
	})
	hs := newH3TestServer(t, Options{Handler: mux, Limits: Limits{MaxBodyBytes: 1 << 30}})
	t.Cleanup(func() { close(block) })
	before := memInUse()
	cmd := exec.Command(os.Args[0], "-test.run=^TestH3UploadHelper$")
	cmd.Env = append(os.Environ(), "H3_UPLOAD_ADDR="+hs.udp, fmt.Sprintf("H3_UPLOAD_CONNS=%d", conns), fmt.Sprintf("H3_UPLOAD_STREAMS=%d", streams))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	// Headers first, then bodies: bodies sent at once could fill a
	// connection's window before the last streams' headers are out.
	if !eventually(30*time.Second, func() bool { return inHandler.Load() == conns*streams }) {
		t.Fatalf("%d of %d uploads reached the handler", inHandler.Load(), conns*streams)
	}
	if _, err := io.WriteString(stdin, "bodies\n"); err != nil {
		t.Fatal(err)
	}
	// Not every stream need get a byte in: a connection's window may fill
	// before the last of its streams is sent any.
	if !eventually(30*time.Second, func() bool { return bodyFlowing.Load() > 0 }) {
		t.Fatal("no upload's body reached the server")
	}
	// The windows fill as the clients send: wait until memory and the
	// streams with body bytes in stay put for a few polls.
	var after uint64
	prevFlow, stable := int32(-1), 0
	eventually(15*time.Second, func() bool {
		prev, flow := after, bodyFlowing.Load()
		after = memInUse()
		if flow == prevFlow && after < prev+prev/100 && after+prev/100 > prev {
			stable++
		} else {
			stable = 0
		}
		prevFlow = flow
		return stable >= 5
	})
	per := (float64(after) - float64(before)) / conns / (1 << 20)
	t.Logf("%d QUIC connections × %d streams uploading to a handler that does not read (%d of them got body bytes in): the server holds %.2f MiB per connection (heap and stacks, %s)",
		conns, streams, bodyFlowing.Load(), per, raceNote)
	if per > 8 {
		t.Errorf("%.2f MiB per connection, want the windows to bound it (at most 8 MiB)", per)
	}
}

// TestH3UploadHelper is TestH3MemoryPerConn's client process: it does
// nothing unless H3_UPLOAD_ADDR is set.
func TestH3UploadHelper(t *testing.T) {
	addr := os.Getenv("H3_UPLOAD_ADDR")
	if addr == "" {
		t.Skip("TestH3MemoryPerConn's client process")
	}
	conns, _ := strconv.Atoi(os.Getenv("H3_UPLOAD_CONNS"))
	streams, _ := strconv.Atoi(os.Getenv("H3_UPLOAD_STREAMS"))
	hs := &h3TestServer{testServer: &testServer{}, udp: addr}
	bodies := make(chan struct{}) // closed when the parent says every header is in
	go func() {
		bufio.NewReader(os.Stdin).ReadString('\n')
		close(bodies)
		io.Copy(io.Discard, os.Stdin) // until the parent closes it
		os.Exit(0)
	}()
	for i := range conns {
		tr := &http3.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"},
			Dial: func(ctx context.Context, _ string, tlsConf *tls.Config, conf *quic.Config) (*quic.Conn, error) {
				return hs.dialQUIC(ctx, fmt.Sprintf("127.0.0.%d", 10+i), tlsConf, conf)
			},
		}
		for range streams {
			go func() {
				// Again until it is in (a busy machine may time a dial or a
				// handshake out, and the transport then needs a moment to
				// drop the dead connection): the parent waits for every
				// upload to be in its handler and kills this process.
				for try := 0; ; try++ {
					if try > 0 {
						time.Sleep(100 * time.Millisecond)
					}
					req, _ := http.NewRequest("POST", "https://localhost/upload", io.LimitReader(gatedZeros{bodies}, 1<<20))
					req.ContentLength = 1 << 20
					resp, err := tr.RoundTrip(req)
					if err == nil {
						resp.Body.Close()
						return
					}
					fmt.Fprintln(os.Stderr, "upload:", err)
				}
			}()
		}
	}
	select {}
}

// memInUse is the heap and stack memory in use after a collection.
func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// gatedZeros reads as endless zero bytes once its channel is closed.
type gatedZeros struct{ open <-chan struct{} }

func (z gatedZeros) Read(p []byte) (int, error) {
	<-z.open
	clear(p)
	return len(p), nil
}
