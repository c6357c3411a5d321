package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/httpsd/httpsd/metrics"
)

// init sets what ServeQUIC needs from opts and the limits as New set
// them: the Retry threshold, 0-RTT, the advertised port and the stream cap.
func (h *h3State) init(opts Options, lim Limits, reg *metrics.Registry) {
	h.earlyData = opts.EarlyData
	h.port = opts.HTTPSPort
	h.streams = maxStreams(lim.MaxRequestsPerIP)
	rate := lim.QUICRetryAbove
	if rate == 0 {
		rate = defaultRetryAbove
	}
	h.retryRate = rate
	h.retryBucket = tokenBucket{tokens: max(1, rate), last: time.Now()}
	h.retries = reg.Counter("httpsd_quic_retries_total",
		"QUIC Initial packets answered with a Retry (the client must prove its address), by reason: rate (new connections over the rate), per_ip (the address holds half its connections).",
		"reason")
}

// quicConnKey is the context key of a QUIC connection's *quicConn, in the
// quic.Conn's context and so in its requests'.
type quicConnKey struct{}

// quicConn is a QUIC connection as a connTracker counts it: a net.Conn
// whose Close closes the QUIC connection (once accepted) and whose other
// methods are not used. It counts its requests in flight, so that the
// tracker knows when it is idle.
type quicConn struct {
	remote  net.Addr
	s       *Server
	tracked *trackedConn
	conn    atomic.Pointer[quic.Conn] // set when accepted

	mu     sync.Mutex
	active int  // requests in flight
	done   bool // the connection ended; guarded by s.h3.mu
}

var errNoStream = errors.New("server: a QUIC connection is not a byte stream")

func (c *quicConn) Read([]byte) (int, error)         { return 0, errNoStream }
func (c *quicConn) Write([]byte) (int, error)        { return 0, errNoStream }
func (c *quicConn) LocalAddr() net.Addr              { return &net.UDPAddr{} }
func (c *quicConn) RemoteAddr() net.Addr             { return c.remote }
func (c *quicConn) SetDeadline(time.Time) error      { return nil }
func (c *quicConn) SetReadDeadline(time.Time) error  { return nil }
func (c *quicConn) SetWriteDeadline(time.Time) error { return nil }

// Close closes the QUIC connection, as the tracker closes idle ones at
// the global cap; before it is accepted there is nothing to close.
func (c *quicConn) Close() error {
	c.closeWith("idle connection closed")
	return nil
}

func (c *quicConn) closeWith(msg string) {
	if qc := c.conn.Load(); qc != nil {
		qc.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), msg)
	}
}

// begin and end bracket a request: the connection is idle, for the
// tracker, between requests.
func (c *quicConn) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active++; c.active == 1 {
		c.s.conns.setState(c.tracked, stateBusy)
	}
}

func (c *quicConn) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active--; c.active == 0 {
		c.s.conns.setState(c.tracked, stateIdle)
	}
}

func (c *quicConn) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active == 0
}

// early reports whether the handshake is still under way: a request seen
// now came as 0-RTT early data, which an attacker may have replayed.
func (c *quicConn) early() bool {
	qc := c.conn.Load()
	if qc == nil {
		return true
	}
	select {
	case <-qc.HandshakeComplete():
		return false
	default:
		return true
	}
}

var errQUICRefused = errors.New("server: connection cap reached")

// quicConnContext admits a new QUIC connection into the connection caps
// (per client address and in all, with the TCP connections) or refuses it
// with CONNECTION_REFUSED; it is quic.Transport.ConnContext. The
// connection is counted until it ends.
func (s *Server) quicConnContext(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	qc := &quicConn{remote: info.RemoteAddr, s: s}
	tc := s.conns.admit(qc)
	if tc == nil {
		return nil, errQUICRefused
	}
	qc.tracked = tc
	context.AfterFunc(ctx, func() { s.quicConnDone(qc, context.Cause(ctx)) })
	return context.WithValue(ctx, quicConnKey{}, qc), nil
}

// quicConnDone counts a QUIC connection out when it ends, and a failed
// handshake when it was never accepted.
func (s *Server) quicConnDone(qc *quicConn, cause error) {
	qc.tracked.Close()
	h := &s.h3
	h.mu.Lock()
	qc.done = true
	delete(h.conns, qc)
	closed := h.closed
	h.mu.Unlock()
	if qc.conn.Load() != nil || closed {
		return
	}
	var hto *quic.HandshakeTimeoutError
	var ito *quic.IdleTimeoutError
	var te *quic.TransportError
	switch {
	case errors.As(cause, &hto) || errors.As(cause, &ito):
		s.metrics.handshakeFailures.With("timeout").Inc()
	case errors.As(cause, &te) && te.Remote && te.ErrorCode.IsCryptoError():
		s.metrics.handshakeFailures.With("client_alert").Inc()
	case cause != nil:
		s.metrics.handshakeFailure(cause)
	}
}

// needsRetry reports whether a connection attempt from addr must first
// prove that it owns its address (a QUIC Retry, one more round trip):
// when new connections arrive faster than Limits.QUICRetryAbove a second,
// and when addr already holds half its share of connections, so that
// packets with a spoofed source cannot fill a victim's share. It is
// quic.Transport.VerifySourceAddress.
func (s *Server) needsRetry(addr net.Addr) bool {
	h := &s.h3
	h.retryMu.Lock()
	ok := h.retryRate > 0 && h.retryBucket.take(time.Now(), h.retryRate, max(1, h.retryRate))
	h.retryMu.Unlock()
	if !ok {
		h.retries.With("rate").Inc()
		return true
	}
	if per := s.conns.maxPerIP.Load(); per > 0 && 2*int64(s.conns.countOf(addr)) >= per {
		h.retries.With("per_ip").Inc()
		return true
	}
	return false
}

// countOf returns the connections counted for addr's client key.
func (t *connTracker) countOf(addr net.Addr) int {
	key := clientKey(addr.String())
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.perIP[key]
}

// h3Listener hands accepted QUIC connections to the HTTP/3 server,
// noting them for the tracker and for shutdown.
type h3Listener struct {
	http3.QUICListener
	s *Server
}

func (l *h3Listener) Accept(ctx context.Context) (*quic.Conn, error) {
	c, err := l.QUICListener.Accept(ctx)
	if err != nil {
		return nil, err
	}
	if qc, ok := c.Context().Value(quicConnKey{}).(*quicConn); ok {
		qc.conn.Store(c)
		h := &l.s.h3
		h.mu.Lock()
		if !qc.done {
			if h.conns == nil {
				h.conns = map[*quicConn]struct{}{}
			}
			h.conns[qc] = struct{}{}
		}
		h.mu.Unlock()
	}
	return c, nil
}

// h3Serve wraps the app for HTTP/3: the request counts toward its
// connection's activity, and gets the read and write deadlines net/http
// gives HTTP/1.1 and HTTP/2 requests.
func (s *Server) h3Serve(app http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if qc, ok := r.Context().Value(quicConnKey{}).(*quicConn); ok {
			qc.begin()
			defer qc.end()
		}
		rc := http.NewResponseController(w)
		now := time.Now()
		rc.SetReadDeadline(now.Add(s.lim.ReadTimeout))
		rc.SetWriteDeadline(now.Add(s.lim.WriteTimeout))
		app.ServeHTTP(w, r)
	})
}
