package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// ticketCache is a client session cache that counts the tickets it got.
type ticketCache struct {
	tls.ClientSessionCache
	puts atomic.Int32
}

func (c *ticketCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.puts.Add(1)
	}
	c.ClientSessionCache.Put(key, cs)
}

// holdProxy relays UDP datagrams between one client and addr, holding
// back the server's while hold is set: the client sends its 0-RTT data
// but cannot complete the handshake, so the server reads every request
// in it as early data.
type holdProxy struct {
	pc, up net.PacketConn
	dst    net.Addr
	hold   atomic.Bool

	mu     sync.Mutex
	client net.Addr
	held   [][]byte
}

func newHoldProxy(t *testing.T, addr string) *holdProxy {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := net.ResolveUDPAddr("udp", addr)
	p := &holdProxy{pc: pc, up: up, dst: dst}
	t.Cleanup(func() { pc.Close(); up.Close() })
	go p.fromClient()
	go p.fromServer()
	return p
}

func (p *holdProxy) fromClient() {
	buf := make([]byte, 2048)
	for {
		n, from, err := p.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.client = from
		p.mu.Unlock()
		p.up.WriteTo(buf[:n], p.dst)
	}
}

func (p *holdProxy) fromServer() {
	buf := make([]byte, 2048)
	for {
		n, _, err := p.up.ReadFrom(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		client := p.client
		if p.hold.Load() {
			p.held = append(p.held, append([]byte(nil), buf[:n]...))
			p.mu.Unlock()
			continue
		}
		p.mu.Unlock()
		if client != nil {
			p.pc.WriteTo(buf[:n], client)
		}
	}
}

// release stops holding and sends what was held.
func (p *holdProxy) release() {
	p.hold.Store(false)
	p.mu.Lock()
	held, client := p.held, p.client
	p.held = nil
	p.mu.Unlock()
	for _, b := range held {
		p.pc.WriteTo(b, client)
	}
}

// earlyConn dials addr over QUIC v1 with cache (0-RTT when it holds a
// ticket) and tokens (the server's address validation tokens, so that a
// server that has not yet seen the client's Finished may send more than
// three times what it received) and returns the connection and an HTTP/3
// client connection.
func earlyConn(t *testing.T, hs *h3TestServer, addr string, cache tls.ClientSessionCache, tokens quic.TokenStore) (*quic.Conn, *http3.ClientConn) {
	t.Helper()
	conf := hs.clientTLS()
	conf.ClientSessionCache = cache
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: pc}
	t.Cleanup(func() { tr.Close(); pc.Close() })
	ua, _ := net.ResolveUDPAddr("udp", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tr.DialEarly(ctx, ua, conf, &quic.Config{Versions: []quic.Version{quic.Version1}, TokenStore: tokens})
	if err != nil {
		t.Fatalf("dial QUIC: %v", err)
	}
	return c, (&http3.Transport{}).NewClientConn(c)
}

// send makes one request on its own stream, without waiting for the
// handshake (as a request sent in 0-RTT), and returns its status (0 for
// an error, reported).
func send(t *testing.T, cc *http3.ClientConn, method, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		t.Errorf("open stream: %v", err)
		return 0
	}
	req, _ := http.NewRequestWithContext(ctx, method, url, nil)
	if err := str.SendRequestHeader(req); err != nil {
		t.Errorf("send %s: %v", method, err)
		return 0
	}
	str.Close()
	resp, err := str.ReadResponse()
	if err != nil {
		t.Errorf("%s %s: %v", method, url, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestH3EarlyData: 0-RTT is refused unless Options.EarlyData; with it, a
// GET in early data is served and a POST gets 425 Too Early (the proxy
// holds the client's Finished back, so the server has not completed the
// handshake when it reads them), then is served once it has.
func TestH3EarlyData(t *testing.T) {
	for _, early := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[early], func(t *testing.T) {
			mux := http.NewServeMux()
			mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Method)) })
			hs := newH3TestServer(t, Options{EarlyData: early, Handler: mux})
			cache := &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			tokens := quic.NewLRUTokenStore(4, 4)
			c, cc := earlyConn(t, hs, hs.udp, cache, tokens)
			if got := send(t, cc, "GET", hs.url+"/echo"); got != 200 {
				t.Fatalf("GET on the first connection = %d, want 200", got)
			}
			if !eventually(5*time.Second, func() bool { return cache.puts.Load() > 0 }) {
				t.Fatal("no session ticket from the server")
			}
			c.CloseWithError(0, "")

			proxy := newHoldProxy(t, hs.udp)
			proxy.hold.Store(early)
			c, cc = earlyConn(t, hs, proxy.pc.LocalAddr().String(), cache, tokens)
			if early {
				got := make(chan [2]int, 2)
				for _, m := range []string{"GET", "POST"} {
					go func() { got <- [2]int{len(m), send(t, cc, m, hs.url+"/echo")} }()
				}
				if !eventually(10*time.Second, func() bool {
					return hs.logLine("method=GET", "status=200", "remote="+proxy.up.LocalAddr().String()) != "" &&
						hs.logLine("method=POST", "status=425") != ""
				}) {
					t.Fatalf("no GET 200 and POST 425 in early data:\n%s", hs.logs)
				}
				proxy.release()
				for range 2 {
					r := <-got
					if want := map[int]int{3: 200, 4: http.StatusTooEarly}[r[0]]; r[1] != want {
						t.Errorf("%s in early data = %d, want %d", map[int]string{3: "GET", 4: "POST"}[r[0]], r[1], want)
					}
				}
			}
			select {
			case <-c.HandshakeComplete():
			case <-time.After(10 * time.Second):
				t.Fatal("handshake did not complete")
			}
			if used := c.ConnectionState().Used0RTT; used != early {
				t.Errorf("Used0RTT = %v, want %v", used, early)
			}
			if got := send(t, cc, "POST", hs.url+"/echo"); got != 200 {
				t.Errorf("POST after the handshake = %d, want 200", got)
			}
			if early && hs.logLine("method=POST", "status=425", "proto=HTTP/3.0") == "" {
				t.Errorf("no access log line for the 425:\n%s", hs.logs)
			}
		})
	}
}
