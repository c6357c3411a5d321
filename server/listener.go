package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"
)

// connListener accepts connections for an http.Server: it counts them in
// a connTracker (closing those over a cap before reading a byte), and,
// for HTTPS, completes the TLS handshake itself, each in its own
// goroutine, so that it can hand HTTP/1.1 connections to net/http as
// plaintext *h1Conn (whose bytes httpsd can see) and HTTP/2 ones as the
// *tls.Conn that net/http passes to the HTTP/2 server.
type connListener struct {
	inner   net.Listener
	tracker *connTracker
	tls     *tls.Config          // nil: plain HTTP
	timeout func() time.Duration // handshake timeout
	// handshakeFailed is told of every failed handshake.
	handshakeFailed func(c net.Conn, err error)
	// h1 makes the plaintext view of an HTTP/1 connection.
	h1 func(c net.Conn, state *tls.ConnectionState) net.Conn
	// proxyFrom, when not empty, are the peers (load balancers) that must
	// begin every connection with a PROXY protocol header naming the
	// client; a connection from another peer must not. proxyRefused is
	// told of each connection closed for breaking that.
	proxyFrom    []netip.Prefix
	proxyRefused func()

	ready chan net.Conn
	errc  chan error
	done  chan struct{}
	once  sync.Once
	ctx   context.Context // cancelled by Close: ends handshakes in progress
	stop  context.CancelFunc
}

func newConnListener(inner net.Listener, t *connTracker, conf *tls.Config) *connListener {
	ctx, stop := context.WithCancel(context.Background())
	l := &connListener{inner: inner, tracker: t, tls: conf,
		ready: make(chan net.Conn), errc: make(chan error, 1), done: make(chan struct{}), ctx: ctx, stop: stop}
	return l
}

// run accepts until the listener fails or is closed.
func (l *connListener) run() {
	var backoff time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			if l.closed() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Temporary() || isFDExhaustion(err) {
				// Out of file descriptors (or another passing error): close
				// idle connections to get some back, then wait a little,
				// as net/http does.
				l.tracker.drainIdle(drainBatch)
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(backoff):
				case <-l.done:
					return
				}
				continue
			}
			select {
			case l.errc <- err:
			case <-l.done:
			}
			return
		}
		backoff = 0
		if len(l.proxyFrom) > 0 {
			peer := clientAddr(c.RemoteAddr().String())
			listed := slices.ContainsFunc(l.proxyFrom, func(p netip.Prefix) bool { return p.Contains(peer) })
			// A balancer's connections count per client once its header
			// names the client.
			if tc := l.tracker.admitAs(c, clientKey(c.RemoteAddr().String()), !listed); tc != nil {
				go l.proxied(tc, listed)
			}
			continue
		}
		tc := l.tracker.admit(c)
		if tc == nil {
			continue
		}
		if l.tls == nil {
			l.deliver(l.h1(tc, nil))
			continue
		}
		go l.handshake(tc)
	}
}

// proxied reads the PROXY protocol header of a connection from a listed
// peer (listed), or checks that another peer sends none, then serves it as
// coming from the client the header names.
func (l *connListener) proxied(tc *trackedConn, listed bool) {
	policy := proxyproto.REJECT
	if listed {
		policy = proxyproto.REQUIRE
	}
	pc := proxyproto.NewConn(tc, proxyproto.WithPolicy(policy), proxyproto.SetReadHeaderTimeout(l.timeout()))
	if _, err := pc.Read(nil); err != nil { // reads the header, or sees there is none
		l.proxyRefused()
		tc.Close()
		return
	}
	if listed && !l.tracker.rekey(tc, clientKey(pc.RemoteAddr().String())) {
		l.tracker.refused("conn_per_ip")
		tc.Close()
		return
	}
	c := &proxiedConn{Conn: pc, tc: tc}
	if l.tls == nil {
		l.deliver(l.h1(c, nil))
		return
	}
	l.handshake(c)
}

// proxiedConn is a connection whose client a PROXY protocol header named.
type proxiedConn struct {
	*proxyproto.Conn
	tc *trackedConn
}

// NetConn returns the tracked connection under c.
func (c *proxiedConn) NetConn() net.Conn { return c.tc }

// handshake completes the TLS handshake of c, then
// delivers it.
func (l *connListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.tls)
	timeout := l.timeout()
	c.SetDeadline(time.Now().Add(timeout))
	ctx, cancel := context.WithTimeout(l.ctx, timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		l.handshakeFailed(c, err)
		tc.Close()
		return
	}
	c.SetDeadline(time.Time{})
	state := tc.ConnectionState()
	switch state.NegotiatedProtocol {
	case "h2":
		l.deliver(tc) // net/http hands it to the HTTP/2 server
	case "", "http/1.1":
		l.deliver(l.h1(tc, &state))
	default: // acme-tls/1: the handshake was the whole exchange
		tc.Close()
	}
}

// deliver passes c to Accept, or closes it once the listener is closed.
func (l *connListener) deliver(c net.Conn) {
	select {
	case l.ready <- c:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next connection ready to serve.
func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and ends handshakes in progress.
func (l *connListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		l.stop()
		err = l.inner.Close()
	})
	return err
}

func (l *connListener) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *connListener) Addr() net.Addr { return l.inner.Addr() }

// isFDExhaustion reports whether err is the process or the system running
// out of file descriptors.
func isFDExhaustion(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
