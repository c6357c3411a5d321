package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpsd/httpsd/metrics"
	"golang.org/x/net/http2"
)

// TestHTTP2SlotStarvation plays the attacks of the outside reviews:
// HTTP/2 connections with a flow-control window of 0 whose streams never
// get their answers. Their streams are bounded per client (2 × the
// per-client cap; more are reset at once) and cut SendTimeout after their
// last progress; the concurrency cap's slots are not held by writes to the
// network; a client from another address is served throughout.
func TestHTTP2SlotStarvation(t *testing.T) {
	long := "/hello/" + strings.Repeat("'", 3000) // escapes to 18 KB
	for _, tt := range []struct {
		name                  string
		addrs, conns, streams int
		path                  string
	}{
		// The first review: 1 address, 5 × 250 streams, 18 KB answers
		// that block the handler in Write (before: 19 of 20 requests of
		// another client got 503, 1024 slots taken).
		{"one address, long answers", 1, 5, 250, long},
		// The second: short answers, written after the handler returned,
		// from many connections (before: 25,600 streams and 363 MB held
		// by one address for 30s).
		{"one address, short answers, many connections", 1, 40, 100, "/hello/x"},
		// 11 addresses at their per-client cap would fill 1024 slots
		// (before: 0 of 5 requests answered).
		{"eleven addresses, long answers", 11, 1, 100, long},
	} {
		t.Run(tt.name, func(t *testing.T) {
			starve(t, tt.addrs, tt.conns, tt.streams, tt.path)
		})
	}
}

func starve(t *testing.T, addrs, conns, streams int, path string) {
	reg := new(metrics.Registry)
	const perIP = 100
	ts := newTestServer(t, Options{Metrics: reg, Limits: Limits{MaxConcurrent: 1024, MaxRequestsPerIP: perIP,
		QueueTimeout: 100 * time.Millisecond, SendTimeout: 5 * time.Second, WriteTimeout: time.Minute}}, nil)
	normal := ts.clientFrom("127.0.0.2")
	baseline, failed := timedGets(normal, ts.url+"/hello/normal", 10)
	if failed > 0 {
		t.Fatalf("%d of 10 requests failed before the attack", failed)
	}
	var wg sync.WaitGroup
	for a := range addrs {
		for range conns {
			h := dialH2(t, ts.addr, fmt.Sprintf("127.0.1.%d", 10+a), http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
			go h.discard()
			wg.Go(func() {
				for range streams {
					if _, err := h.get(path); err != nil {
						return
					}
				}
			})
		}
	}
	inFlight := func() float64 { v, _ := reg.Value("httpsd_http2_streams_open", nil); return v }
	// The peak of open streams while the attack is sent (on a loaded
	// machine the first streams may be cut before the last are sent).
	var peak atomic.Int64
	sent := make(chan struct{})
	go func() {
		for {
			if v := int64(inFlight()); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-sent:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	wg.Wait()
	want := float64(min(addrs*conns*streams, addrs*2*perIP))
	// Half is enough to be an attack: on a loaded machine the first
	// streams may be cut before the last are sent.
	ok := eventually(10*time.Second, func() bool { return float64(peak.Load()) >= want/2 })
	close(sent)
	if !ok {
		t.Fatalf("at most %v streams open during the attack, want about %v", peak.Load(), want)
	}
	slots := func() int { return len(ts.live.Load().gate.slots) }
	lat, failed := timedGets(normal, ts.url+"/hello/normal", 20)
	peakSlots, peakInFlight := slots(), inFlight()
	t.Logf("under attack: %d answered and %d failed of 20, latency median %v, max %v (before the attack: median %v); %v streams open, %d slots taken",
		len(lat), failed, median(lat), maxOf(lat), median(baseline), peakInFlight, peakSlots)
	if failed > 0 {
		t.Errorf("%d of 20 requests from another address failed under the attack, want 0", failed)
	}
	// Under 100ms, or on a machine so loaded that it was slow before the
	// attack, within 10 times what it took then.
	limit := max(100*time.Millisecond, 10*median(baseline))
	slow := 0
	for _, d := range lat {
		if d > limit {
			slow++
		}
	}
	// The review's figure, 20 of 20 under 100ms, holds on a quiet machine
	// (the log line above); on a loaded one, judge the median, and no
	// answer may take seconds (before the fixes, 19 of 20 failed).
	if most := max(2*time.Second, 20*median(baseline)); median(lat) > limit || maxOf(lat) > most {
		t.Errorf("%d of 20 requests from another address took over %v under the attack (median %v, slowest %v); want the median under it, none over %v",
			slow, limit, median(lat), maxOf(lat), most)
	}
	if peakInFlight > float64(addrs*2*perIP+1) {
		t.Errorf("%v streams open under the attack, want at most %d (2 × the per-client cap per address)", peakInFlight, addrs*2*perIP)
	}
	if peakSlots > perIP+1 {
		t.Errorf("%d of the concurrency cap's slots taken under the attack, want at most the per-client cap %d", peakSlots, perIP)
	}
	// The attacker never reads: its streams are cut SendTimeout after
	// their last progress.
	if !eventually(15*time.Second, func() bool { return inFlight() == 0 && slots() == 0 }) {
		t.Errorf("%v streams open, %d slots taken after the send timeout, want 0: streams blocked on a client that does not read live on", inFlight(), slots())
	}
	if addrs*conns*streams > addrs*2*perIP {
		if got := counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": "streams_per_ip"}); got <= 0 {
			t.Errorf("httpsd_rejections_total{reason=streams_per_ip} = %v, want the attacker's extra streams counted", got)
		}
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)/2]
}

func maxOf(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1]
}

// keepAlive opens an HTTP/1.1 connection from the loopback address from,
// makes one request on it and leaves it open and idle.
func keepAlive(t *testing.T, addr, from string) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /hello/idle HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.SetDeadline(time.Time{})
	return c, nil
}

// TestMaxConns fills the connection cap with idle keep-alive connections
// from several addresses, each under the per-address cap: new clients are
// served, the idle connections being closed to make room, oldest first;
// only connections that are all busy make the server refuse new ones.
func TestMaxConns(t *testing.T) {
	reg := new(metrics.Registry)
	const maxConns = 40
	ts := newTestServer(t, Options{Metrics: reg, Limits: Limits{MaxConns: maxConns, MaxConnsPerIP: 20}}, nil)
	var idle []*tls.Conn
	for i := range 3 * 20 {
		c, err := keepAlive(t, ts.addr, fmt.Sprintf("127.0.0.%d", 10+i%3))
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		idle = append(idle, c)
	}
	if n := ts.OpenConns(); n > maxConns {
		t.Errorf("%d connections open, want at most max_conns %d", n, maxConns)
	}
	// The first ones, idle longest, were closed.
	first := idle[0]
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := first.Read(make([]byte, 1)); err == nil {
		t.Error("the connection idle longest is still open, want it closed to make room")
	}
	newClient := ts.clientFrom("127.0.0.2")
	lat, failed := timedGets(newClient, ts.url+"/hello/new", 5)
	newClient.CloseIdleConnections()
	if failed > 0 {
		t.Errorf("%d of 5 requests of a new client failed with the cap full of idle connections, want 0", failed)
	}
	t.Logf("new client at the cap: median %v", median(lat))
	if got := counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": "max_conns"}); got > 0 {
		t.Errorf("httpsd_rejections_total{reason=max_conns} = %v with idle connections to close, want 0", got)
	}

	// Connections in the middle of a request are neither idle nor
	// silent: at the cap they are kept, and a new connection is refused,
	// but from 127.0.0.1 (the health probe), which has a small reserve.
	for _, c := range idle {
		c.Close()
	}
	if !eventually(5*time.Second, func() bool { return ts.OpenConns() == 0 }) {
		t.Fatalf("%d connections open after the clients closed them all", ts.OpenConns())
	}
	reg = new(metrics.Registry)
	busy := newTestServer(t, Options{Metrics: reg, Limits: Limits{MaxConns: maxConns}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			<-r.Context().Done()
		}
	}))
	for i := range maxConns {
		c, err := keepAlive(t, busy.addr, fmt.Sprintf("127.0.0.%d", 20+i%3))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /hang HTTP/1.1\r\nHost: localhost\r\n\r\n") // never answered
	}
	if !eventually(10*time.Second, func() bool {
		return counterValue(t, reg, "httpsd_http_requests_in_flight", nil) == maxConns
	}) {
		t.Fatalf("%d connections open, %v requests in flight, want %d of each", busy.OpenConns(),
			counterValue(t, reg, "httpsd_http_requests_in_flight", nil), maxConns)
	}
	time.Sleep(2 * freshGrace) // busy connections are not evicted however old
	if _, err := busy.clientFrom("127.0.0.2").Get(busy.url + "/hello/refused"); err == nil {
		t.Error("GET with the cap full of busy connections succeeded, want the connection refused")
	}
	if got := counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": "max_conns"}); got < 1 {
		t.Errorf("httpsd_rejections_total{reason=max_conns} = %v, want the refused connection counted", got)
	}
	local := busy.clientFrom("127.0.0.1")
	if resp, err := local.Get(busy.url + "/healthz"); err != nil {
		t.Errorf("GET /healthz from 127.0.0.1 with the cap full: %v, want it let in by the loopback reserve", err)
	} else if resp.Body.Close(); resp.StatusCode != 200 {
		t.Errorf("GET /healthz from 127.0.0.1 = %d, want 200", resp.StatusCode)
	}
	local.CloseIdleConnections()
}

// TestSilentConnections: connections that never bring a request (silent
// TCP, stalled handshakes) cost an attacker nothing. One address may hold
// only freshPerIP of them; and when they fill the connection cap from many
// addresses, the oldest are closed to let a new client in.
func TestSilentConnections(t *testing.T) {
	reg := new(metrics.Registry)
	ts := newTestServer(t, Options{Metrics: reg}, nil)
	silent := func(ts *testServer, from string) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	// One address, more silent connections than it may hold.
	for range freshPerIP + 10 {
		silent(ts, "127.0.3.1")
	}
	if !eventually(5*time.Second, func() bool {
		return counterValue(t, reg, "httpsd_rejections_total", map[string]string{"reason": "conn_per_ip"}) >= 10
	}) {
		t.Errorf("silent connections from one address beyond %d were not refused (open %d)", freshPerIP, ts.OpenConns())
	}
	if n := ts.OpenConns(); n > freshPerIP {
		t.Errorf("%d silent connections from one address open, want at most %d", n, freshPerIP)
	}

	// Many addresses fill the cap with silent connections; a new client
	// still gets in, the oldest silent connection making room.
	const maxConns = 40
	ts = newTestServer(t, Options{Metrics: new(metrics.Registry), Limits: Limits{MaxConns: maxConns}}, nil)
	for i := range maxConns {
		silent(ts, fmt.Sprintf("127.0.3.%d", 10+i%8))
	}
	if !eventually(5*time.Second, func() bool { return ts.OpenConns() == maxConns }) {
		t.Fatalf("%d connections open, want the cap %d", ts.OpenConns(), maxConns)
	}
	client := ts.clientFrom("127.0.0.2")
	ok := eventually(10*time.Second, func() bool {
		resp, err := client.Get(ts.url + "/hello/new")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if !ok {
		t.Errorf("a new client never got in with the cap full of silent connections")
	}
	if n := ts.OpenConns(); n > maxConns {
		t.Errorf("%d connections open, want at most the cap %d", n, maxConns)
	}
}
