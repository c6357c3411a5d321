package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/httpsd/httpsd/metrics"
)

// HTTP/3 bounds on what one QUIC connection may make the server hold.
// The receive windows cap the request data buffered for a connection
// whose handlers do not read it (like HTTP/2's 1 MiB of unread upload):
// 512 KiB of stream data, kept in packet buffers of 1452 bytes, so at
// most 512 KiB × 1452/128 ≈ 5.7 MiB when a client sends the smallest
// frames quic-go keeps in such a buffer (128 bytes), and about 0.55 MiB
// when it sends full packets, as clients do. Request streams follow
// Limits.MaxRequestsPerIP as HTTP/2's do (at most 250); unidirectional
// streams are the three HTTP/3 needs (control, QPACK encoder and
// decoder) and a few for extensions and grease.
const (
	h3StreamWindow = 512 << 10
	h3ConnWindow   = 512 << 10
	h3UniStreams   = 8
	// altSvcMaxAge is how long clients remember that HTTP/3 is offered
	// (30 days, as Caddy and quic-go advertise).
	altSvcMaxAge = 30 * 24 * time.Hour
	// defaultRetryAbove is QUICRetryAbove's default.
	defaultRetryAbove = 1000
)

// h3State is the HTTP/3 side of a Server: what ServeQUIC opened, the
// Alt-Svc header HTTP/1.1 and HTTP/2 responses carry once it serves, and
// the accepted QUIC connections (for closing the idle ones at shutdown).
type h3State struct {
	altSvc    atomic.Pointer[[]string]
	earlyData bool   // Options.EarlyData
	port      int    // Options.HTTPSPort, for Alt-Svc
	streams   uint32 // request streams per connection

	retryMu     sync.Mutex
	retryRate   float64 // Limits.QUICRetryAbove; negative: always Retry
	retryBucket tokenBucket
	retries     metrics.CounterVec

	mu     sync.Mutex
	closed bool // Shutdown was called: ServeQUIC serves no more
	srv    *http3.Server
	tr     *quic.Transport
	ln     interface{ Close() error }
	conns  map[*quicConn]struct{} // accepted and not closed
}

// ServeQUIC serves HTTP/3 on pc, a UDP socket its caller opened (on the
// HTTPS address, as browsers expect), until Shutdown; it returns
// http.ErrServerClosed then. HTTP/3 requests pass through the same
// certificates, host check, limits, metrics and access log as the others;
// QUIC connections count toward Limits.MaxConnsPerIP and MaxConns with
// the TCP ones. While it serves, HTTP/1.1 and HTTP/2 responses for served
// hosts advertise it in Alt-Svc, with Options.HTTPSPort (or pc's port).
// A UDP receive or send buffer smaller than quic-go wants is logged once,
// with the sysctl that fixes it.
func (s *Server) ServeQUIC(pc net.PacketConn) error {
	tr := &quic.Transport{Conn: pc, ConnContext: s.quicConnContext, VerifySourceAddress: s.needsRetry}
	tlsConf := http3.ConfigureTLSConfig(s.tls) // a copy with ALPN h3
	var ln http3.QUICListener
	var err error
	if s.h3.earlyData {
		ln, err = tr.ListenEarly(tlsConf, s.quicConfig())
	} else {
		ln, err = tr.Listen(tlsConf, s.quicConfig())
	}
	if err != nil {
		return fmt.Errorf("server: quic listen %s: %w", pc.LocalAddr(), err)
	}
	srv := &http3.Server{
		Handler:        s.h3Serve(s.app(http.HandlerFunc(s.h3Checks))),
		MaxHeaderBytes: 2 * s.lim.MaxHeaderBytes, // the app answers 431 below this, with a log line
		IdleTimeout:    s.lim.IdleTimeout,
		Logger:         slog.New(warnAndAbove{s.logger.Handler()}), // not a debug line per request
	}
	h := &s.h3
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		tr.Close()
		return http.ErrServerClosed
	}
	h.srv, h.tr, h.ln = srv, tr, ln
	h.mu.Unlock()
	if w := udpBufferWarning(pc); w != "" {
		s.logger.Warn(w)
	}
	port := s.h3.port
	if port == 0 {
		if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok {
			port = ua.Port
		}
	}
	alt := []string{`h3=":` + strconv.Itoa(port) + `"; ma=` + strconv.Itoa(int(altSvcMaxAge/time.Second))}
	h.altSvc.Store(&alt)
	err = srv.ServeListener(&h3Listener{QUICListener: ln, s: s})
	if errors.Is(err, http.ErrServerClosed) || h.isClosed() {
		return http.ErrServerClosed
	}
	return err
}

// warnAndAbove passes on the records of at least warning level.
type warnAndAbove struct{ slog.Handler }

func (h warnAndAbove) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

func (h warnAndAbove) WithAttrs(as []slog.Attr) slog.Handler {
	return warnAndAbove{h.Handler.WithAttrs(as)}
}

func (h warnAndAbove) WithGroup(name string) slog.Handler {
	return warnAndAbove{h.Handler.WithGroup(name)}
}

// quicConfig bounds each QUIC connection: handshake and idle time from
// the limits, flow-control windows and stream counts from the constants
// above; 0-RTT only with Options.EarlyData.
func (s *Server) quicConfig() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout:           s.lim.ReadHeaderTimeout / 2, // quic-go allows twice this for the handshake
		MaxIdleTimeout:                 s.lim.IdleTimeout,
		InitialStreamReceiveWindow:     h3StreamWindow,
		MaxStreamReceiveWindow:         h3StreamWindow,
		InitialConnectionReceiveWindow: h3ConnWindow,
		MaxConnectionReceiveWindow:     h3ConnWindow,
		MaxIncomingStreams:             int64(s.h3.streams),
		MaxIncomingUniStreams:          h3UniStreams,
		Allow0RTT:                      s.h3.earlyData,
	}
}

// h3Checks answers the HTTP/3 requests that passed the checks every
// request passes: with 425 Too Early when one that is not GET or HEAD
// arrived as 0-RTT early data (before the handshake completed, so it may
// be a replay), else with the handler of the current settings.
func (s *Server) h3Checks(w http.ResponseWriter, r *http.Request) {
	if qc, _ := r.Context().Value(quicConnKey{}).(*quicConn); qc != nil && qc.early() &&
		r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.reject(w, http.StatusTooEarly, "425 too early: send this request again after the handshake")
		return
	}
	s.live.Load().handler.ServeHTTP(w, r)
}

// shutdownQUIC stops HTTP/3 gracefully: no new connections, GOAWAY to the
// open ones, whose requests in flight finish until ctx is done; idle
// connections are closed meanwhile, as net/http closes idle keep-alive
// connections. It returns ctx's error if requests were still running.
func (s *Server) shutdownQUIC(ctx context.Context) error {
	h := &s.h3
	h.mu.Lock()
	h.closed = true
	srv, ln, tr := h.srv, h.ln, h.tr
	h.mu.Unlock()
	if srv == nil {
		return nil
	}
	ln.Close() // handshakes in progress are refused; accepted connections go on
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	wait := 5 * time.Millisecond
	var err error
	for stop := false; !stop; {
		h.closeIdle()
		select {
		case err = <-done:
			stop = true
		case <-time.After(wait):
			wait = min(2*wait, 200*time.Millisecond)
		}
	}
	tr.Close()
	return err
}

// closeQUIC closes every QUIC connection at once.
func (s *Server) closeQUIC() {
	s.h3.mu.Lock()
	srv, tr := s.h3.srv, s.h3.tr
	s.h3.closed = true
	s.h3.mu.Unlock()
	if srv != nil {
		srv.Close()
		tr.Close()
	}
}

func (h *h3State) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// closeIdle closes the accepted connections with no request in flight.
func (h *h3State) closeIdle() {
	h.mu.Lock()
	var idle []*quicConn
	for c := range h.conns {
		if c.idle() {
			idle = append(idle, c)
		}
	}
	h.mu.Unlock()
	for _, c := range idle {
		c.closeWith("server shutting down")
	}
}
