// Command h3load loads an HTTPS server on loopback over HTTP/3 (quic-go)
// or, for comparison with the same client code, HTTP/2 (x/net/http2):
//
//	-mode req   C connections with M requests in flight on each, for D:
//	            requests/s and p99 latency (as h2load -c50 -m10)
//	-mode hs    W workers each opening a new connection (a full handshake,
//	            no session resumption), making one request and closing it,
//	            for D: handshakes/s
//	-mode idle  N connections with one request each, left open: the
//	            server's resident memory per connection (-pid)
//
//	go run ./bench/h3load -addr 127.0.0.1:8450 -proto h3 -mode req
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/http2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8450", "server address (loopback; UDP and TCP)")
	proto := flag.String("proto", "h3", "h3 or h2")
	mode := flag.String("mode", "req", "req, hs or idle")
	conns := flag.Int("c", 50, "connections (req), workers (hs: 16 is a good value)")
	streams := flag.Int("m", 10, "requests in flight per connection (req)")
	dur := flag.Duration("d", 10*time.Second, "duration (req, hs)")
	n := flag.Int("n", 1000, "idle connections (idle)")
	pid := flag.Int("pid", 0, "server process, for idle")
	name := flag.String("name", "server", "name in the output")
	path := flag.String("path", "/hello/world", "request path")
	flag.Parse()
	if host, _, _ := net.SplitHostPort(*addr); !net.ParseIP(host).IsLoopback() {
		fmt.Fprintln(os.Stderr, "h3load: not a loopback address:", *addr)
		os.Exit(1)
	}
	d := &dialer{addr: *addr, proto: *proto, url: "https://localhost" + *path}
	var err error
	switch *mode {
	case "req":
		err = d.requests(*name, *conns, *streams, *dur)
	case "hs":
		err = d.handshakes(*name, *conns, *dur)
	case "idle":
		err = d.idle(*name, *n, *pid)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "h3load:", err)
		os.Exit(1)
	}
}

// dialer opens connections of one protocol to one server.
type dialer struct {
	addr, proto, url string
	from             string          // source address, "" for 127.0.0.1
	tr               *quic.Transport // shared UDP socket for h3
	once             sync.Once
}

// conn is one client connection that can make requests.
type conn struct {
	rt    http.RoundTripper
	close func()
}

func (d *dialer) dial(ctx context.Context) (*conn, error) {
	conf := &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"}
	if d.proto == "h2" {
		conf.NextProtos = []string{"h2"}
		nd := &net.Dialer{}
		if d.from != "" {
			nd.LocalAddr = &net.TCPAddr{IP: net.ParseIP(d.from)}
		}
		c, err := (&tls.Dialer{NetDialer: nd, Config: conf}).DialContext(ctx, "tcp", d.addr)
		if err != nil {
			return nil, err
		}
		cc, err := (&http2.Transport{}).NewClientConn(c)
		if err != nil {
			c.Close()
			return nil, err
		}
		return &conn{rt: cc, close: func() { cc.Close() }}, nil
	}
	d.once.Do(func() {
		from := d.from
		if from == "" {
			from = "127.0.0.1"
		}
		pc, err := net.ListenPacket("udp", from+":0")
		if err != nil {
			panic(err)
		}
		d.tr = &quic.Transport{Conn: pc}
	})
	ua, err := net.ResolveUDPAddr("udp", d.addr)
	if err != nil {
		return nil, err
	}
	conf.NextProtos = []string{http3.NextProtoH3}
	qc, err := d.tr.Dial(ctx, ua, conf, &quic.Config{})
	if err != nil {
		return nil, err
	}
	return &conn{rt: (&http3.Transport{}).NewClientConn(qc), close: func() { qc.CloseWithError(0, "") }}, nil
}

func (d *dialer) get(c *conn) error {
	req, _ := http.NewRequest("GET", d.url, nil)
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// requests runs C connections with M requests in flight on each.
func (d *dialer) requests(name string, c, m int, dur time.Duration) error {
	var cs []*conn
	for range c {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cn, err := d.dial(ctx)
		cancel()
		if err != nil {
			return err
		}
		defer cn.close()
		cs = append(cs, cn)
	}
	var errs atomic.Int64
	lats := make([][]time.Duration, c*m)
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	for i := range c * m {
		wg.Go(func() {
			cn := cs[i/m]
			for time.Now().Before(stop) {
				t := time.Now()
				if err := d.get(cn); err != nil {
					errs.Add(1)
					continue
				}
				lats[i] = append(lats[i], time.Since(t))
			}
		})
	}
	wg.Wait()
	all := slices.Concat(lats...)
	slices.Sort(all)
	p99 := time.Duration(0)
	if len(all) > 0 {
		p99 = all[len(all)*99/100]
	}
	fmt.Printf("%s: %s req: %.0f requests/s, p99 %.2f ms (%d connections x %d streams, %d errors)\n",
		name, d.proto, float64(len(all))/dur.Seconds(), float64(p99.Microseconds())/1000, c, m, errs.Load())
	return nil
}

// handshakes runs w workers, each connecting, requesting and closing.
func (d *dialer) handshakes(name string, w int, dur time.Duration) error {
	var ok, errs atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	for range w {
		wd := &dialer{addr: d.addr, proto: d.proto, url: d.url} // a UDP socket per worker
		wg.Go(func() {
			for time.Now().Before(stop) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				cn, err := wd.dial(ctx)
				cancel()
				if err == nil {
					err = wd.get(cn)
					cn.close()
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	msg := ""
	if e := firstErr.Load(); e != nil {
		msg = "; first: " + e.(string)
	}
	fmt.Printf("%s: %s hs: %.0f full handshakes/s (%d workers, %d errors%s)\n", name, d.proto, float64(ok.Load())/dur.Seconds(), w, errs.Load(), msg)
	return nil
}

// idle opens n connections, one request each, from 50 loopback
// addresses (below per-address caps), and reports the server's resident
// memory per connection once it settles.
func (d *dialer) idle(name string, n, pid int) error {
	var froms []*dialer
	for k := range 50 {
		froms = append(froms, &dialer{addr: d.addr, proto: d.proto, url: d.url, from: fmt.Sprintf("127.0.0.%d", 10+k)})
	}
	if pid == 0 {
		return errors.New("idle needs -pid")
	}
	before, err := settledRSS(pid)
	if err != nil {
		return err
	}
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cn, err := froms[i%len(froms)].dial(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
		defer cn.close()
		if err := d.get(cn); err != nil {
			return fmt.Errorf("connection %d: %w", i, err)
		}
	}
	after, err := settledRSS(pid)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s idle: %d idle connections: RSS %d -> %d KiB: %.1f KiB per idle connection\n",
		name, d.proto, n, before, after, float64(after-before)/float64(n))
	return nil
}

// settledRSS returns the process's VmRSS in KiB once two readings 200ms
// apart differ by less than 0.5%.
func settledRSS(pid int) (int, error) {
	last := -1
	for range 50 {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		rss := 0
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				rss, _ = strconv.Atoi(strings.Fields(rest)[0])
			}
		}
		if last >= 0 && rss <= last+last/200 && rss >= last-last/200 {
			return rss, nil
		}
		last = rss
		time.Sleep(200 * time.Millisecond)
	}
	return last, nil
}
