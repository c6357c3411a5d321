package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
)

// rssKiB returns the resident memory of process pid in KiB.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// settledRSS waits until the process's RSS stops growing and returns it.
func settledRSS(t *testing.T, pid int) int {
	t.Helper()
	last := rssKiB(t, pid)
	eventually(5*time.Second, func() bool {
		now := rssKiB(t, pid)
		settled := now <= last+last/200
		last = max(last, now)
		return settled
	})
	return last
}

// TestIdleQUICMemory measures httpsd's resident memory per idle HTTP/3
// connection beside an idle HTTP/2 one: N of each, one request made on
// each and left open, against a separate httpsd process.
func TestIdleQUICMemory(t *testing.T) {
	const n = 200
	vars, _ := dataDirEnv(t)
	vars["HTTPSD_LIMITS_MAX_CONNS_PER_IP"] = "0"
	vars["HTTPSD_LOG_ACCESS"] = "false"
	p := startProcess(t, "", vars, nil, "-config", "testdata/e2e.yaml")
	p.waitServing(t)
	pid := p.cmd.Process.Pid
	conf := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}
	get := func(rt http.RoundTripper) error {
		req, _ := http.NewRequest("GET", "https://localhost/hello/idle", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	base := settledRSS(t, pid)

	h2conf := conf.Clone()
	h2conf.NextProtos = []string{"h2"}
	for i := range n {
		c, err := tls.Dial("tcp", p.https, h2conf)
		if err != nil {
			t.Fatalf("HTTP/2 connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		cc, err := (&http2.Transport{}).NewClientConn(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := get(cc); err != nil {
			t.Fatalf("GET on HTTP/2 connection %d: %v", i, err)
		}
	}
	withH2 := settledRSS(t, pid)

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: pc}
	t.Cleanup(func() { tr.Close(); pc.Close() })
	ua, _ := net.ResolveUDPAddr("udp", p.https)
	h3conf := conf.Clone()
	h3conf.NextProtos = []string{http3.NextProtoH3}
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := tr.Dial(ctx, ua, h3conf, &quic.Config{})
		cancel()
		if err != nil {
			t.Fatalf("QUIC connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.CloseWithError(0, "") })
		if err := get((&http3.Transport{}).NewClientConn(c)); err != nil {
			t.Fatalf("GET on HTTP/3 connection %d: %v", i, err)
		}
	}
	withH3 := settledRSS(t, pid)
	h2per := float64(withH2-base) / n
	h3per := float64(withH3-withH2) / n
	t.Logf("httpsd RSS %d KiB; +%d idle HTTP/2 connections: %d KiB (%.1f KiB each); +%d idle HTTP/3 connections: %d KiB (%.1f KiB each, %.2fx HTTP/2)",
		base, n, withH2, h2per, n, withH3, h3per, h3per/max(h2per, 1))
	limit := 200.0
	if raceBuild {
		limit = 2000 // the race detector's shadow memory
	}
	if h3per > limit {
		t.Errorf("%.1f KiB per idle HTTP/3 connection, want at most %.0f", h3per, limit)
	}
}
