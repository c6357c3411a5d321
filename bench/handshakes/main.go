// Command handshakes measures TLS handshakes per second against a server
// on loopback, closed loop like ../shared/peers/hsload, in three modes:
// full handshakes with Go's default key exchange (post-quantum
// X25519MLKEM768 first), full ones with X25519 only, and resumed ones
// (session tickets), in TLS 1.3 and in TLS 1.2. Each connection sends one
// request and reads the reply.
//
//	go run ./bench/handshakes -addr 127.0.0.1:8450 -c 16 -d 5s
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8450", "server address (loopback)")
	conc := flag.Int("c", 16, "concurrent connections")
	dur := flag.Duration("d", 5*time.Second, "duration of each mode")
	name := flag.String("name", "server", "name in the output")
	only := flag.String("mode", "", "run only the modes whose name contains this")
	flag.Parse()
	if host, _, _ := net.SplitHostPort(*addr); !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(os.Stderr, "handshakes: not a loopback address:", *addr)
		os.Exit(1)
	}
	modes := []struct {
		name string
		conf *tls.Config
	}{
		{"full (default, X25519MLKEM768)", &tls.Config{}},
		{"full (X25519)", &tls.Config{CurvePreferences: []tls.CurveID{tls.X25519}}},
		{"resumed", &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(*conc * 4)}},
		{"resumed (X25519)", &tls.Config{CurvePreferences: []tls.CurveID{tls.X25519}, ClientSessionCache: tls.NewLRUClientSessionCache(*conc * 4)}},
		// TLS 1.2 resumes without a key exchange; Go's TLS 1.3 server
		// always runs one (psk_dhe_ke).
		{"full (TLS 1.2)", &tls.Config{MaxVersion: tls.VersionTLS12}},
		{"resumed (TLS 1.2)", &tls.Config{MaxVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(*conc * 4)}},
	}
	for _, m := range modes {
		if !strings.Contains(m.name, *only) {
			continue
		}
		m.conf.InsecureSkipVerify, m.conf.ServerName, m.conf.NextProtos = true, "localhost", []string{"http/1.1"}
		n, resumed, errs := load(*addr, m.conf, *conc, *dur)
		fmt.Printf("%s: %s: %.0f handshakes/s (%d resumed of %d, %d errors)\n", *name, m.name, float64(n)/dur.Seconds(), resumed, n, errs)
	}
}

// load runs conc workers for dur, each connecting, requesting and closing
// in a loop, and counts connections, resumptions and errors.
func load(addr string, conf *tls.Config, conc int, dur time.Duration) (n, resumed, errs int64) {
	var nc, rc, ec atomic.Int64
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for time.Now().Before(stop) {
				did, err := once(addr, conf)
				if err != nil {
					ec.Add(1)
					continue
				}
				nc.Add(1)
				if did {
					rc.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return nc.Load(), rc.Load(), ec.Load()
}

func once(addr string, conf *tls.Config) (bool, error) {
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		return false, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /hello/world HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); err != nil {
		return false, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return false, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return c.ConnectionState().DidResume, nil
}
