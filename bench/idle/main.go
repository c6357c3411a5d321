//go:build linux

// Command idle measures what idle TLS keep-alive connections cost a
// server: it opens -n connections to -addr (from 127.0.0.x source
// addresses, -per-ip each), makes one HTTP/1.1 request on each and keeps
// them open, then reports the server's resident memory (of -pid) before
// and after, per connection. Loopback only; it closes everything after
// -hold.
//
//	go run ./bench/idle -addr 127.0.0.1:8450 -pid 1234 -n 10000
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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "idle:", err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:8450", "server address (loopback)")
	pid := flag.Int("pid", 0, "server process id, for its RSS")
	n := flag.Int("n", 10000, "connections")
	perIP := flag.Int("per-ip", 200, "connections per 127.0.0.x source address")
	hold := flag.Duration("hold", 3*time.Second, "how long to hold them before measuring")
	name := flag.String("name", "server", "name in the output")
	flag.Parse()
	if host, _, _ := net.SplitHostPort(*addr); !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", *addr)
	}
	lim := syscall.Rlimit{Cur: uint64(*n + 1024), Max: uint64(*n + 1024)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the open file limit to %d: %w", lim.Cur, err)
	}
	before, err := rss(*pid)
	if err != nil {
		return err
	}
	conns := make([]net.Conn, *n)
	var wg sync.WaitGroup
	errs := make(chan error, *n)
	sem := make(chan struct{}, 64)
	start := time.Now()
	for i := range *n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := open(*addr, net.IPv4(127, 0, byte(i / *perIP / 250), byte(1 + i / *perIP % 250)))
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	var first error
	for err := range errs {
		if first == nil {
			first = err
		}
		failed++
	}
	opened := *n - failed
	time.Sleep(*hold)
	after, err := rss(*pid)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d idle TLS connections (%d failed%s) opened in %v; RSS %.1f MiB before, %.1f MiB after: %.1f KiB per connection\n",
		*name, opened, failed, errSuffix(first), time.Since(start).Round(time.Millisecond),
		float64(before)/1024, float64(after)/1024, float64(after-before)/float64(max(1, opened)))
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	return nil
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return ", first: " + err.Error()
}

// open makes a TLS connection from src, one keep-alive request on it, and
// returns it idle.
func open(addr string, src net.IP) (net.Conn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /hello/idle HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.SetDeadline(time.Time{})
	return c, nil
}

// rss returns the resident set size of pid in KiB.
func rss(pid int) (int, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
