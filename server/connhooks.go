package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"sync"

	"golang.org/x/net/http2"
)

// connKey is the context key of the connection a request came on.
type connKey struct{}

// withConn is http.Server.ConnContext: requests find their connection.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// connState is http.Server.ConnState: it keeps the idle list of the
// connection caps, and marks when an HTTP/1 connection is between
// requests, when net/http may answer a malformed request itself.
func (s *Server) connState(c net.Conn, state http.ConnState) {
	if h1, ok := c.(*h1Conn); ok {
		if state == http.StateIdle {
			h1.handling.Store(false)
		}
		s.fresh.note(h1, state == http.StateNew)
	}
	s.conns.connState(c, state)
}

// freshConns are the HTTP/1 connections that have not had a request yet,
// such as the ones browsers open ahead of need. net/http's Shutdown waits
// up to 5 seconds for such a connection to send something; httpsd closes
// those that have not sent a byte at once instead, and once shutting down,
// those net/http takes from the listener afterwards too.
type freshConns struct {
	mu      sync.Mutex
	m       map[*h1Conn]struct{}
	closing bool // closeSilent has run
}

func (f *freshConns) note(c *h1Conn, fresh bool) {
	f.mu.Lock()
	late := fresh && f.closing // accepted as Shutdown began: net/http would wait for it
	switch {
	case !fresh:
		delete(f.m, c)
	case !late:
		if f.m == nil {
			f.m = map[*h1Conn]struct{}{}
		}
		f.m[c] = struct{}{}
	}
	f.mu.Unlock()
	if late {
		c.Close()
	}
}

// closeSilent closes the fresh connections that have not sent a byte, and
// from then on every connection noted fresh.
func (f *freshConns) closeSilent() {
	f.mu.Lock()
	f.closing = true
	var silent []*h1Conn
	for c := range f.m {
		if !c.readAny.Load() {
			silent = append(silent, c)
		}
	}
	f.mu.Unlock()
	for _, c := range silent {
		c.Close()
	}
}

// serveHTTP2 has srv serve HTTP/2 with Go's HTTP/2 server, streams capped
// at streams per connection, through an h2Conn that cuts floods.
func (s *Server) serveHTTP2(srv *http.Server, streams uint32) {
	h2 := &http2.Server{
		MaxConcurrentStreams: streams,
		CountError:           func(kind string) { s.metrics.h2Errors.With(kind).Inc() },
	}
	if err := http2.ConfigureServer(srv, h2); err != nil {
		panic("server: " + err.Error()) // TLSConfig always has the suites HTTP/2 needs
	}
	srv.TLSNextProto["h2"] = func(hs *http.Server, c *tls.Conn, h http.Handler) {
		var ctx context.Context
		if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
			ctx = bc.BaseContext()
		}
		h2.ServeConn(newH2Conn(c, s.flooded), &http2.ServeConnOpts{Context: ctx, Handler: h, BaseConfig: hs})
	}
}

// flooded counts and logs an HTTP/2 connection cut for a flood of frame.
func (s *Server) flooded(c *h2Conn, frame string) {
	s.metrics.rejections.With("h2_flood").Inc()
	s.logger.Warn("closed an HTTP/2 connection flooding the server with frames", "frame", frame, "remote", c.RemoteAddr().String())
}

// handshakeFailed counts and logs a failed TLS handshake.
func (s *Server) handshakeFailed(c net.Conn, err error) {
	s.metrics.handshakeFailure(err)
	s.logger.Debug("TLS handshake error", "remote", c.RemoteAddr().String(), "err", err)
}

// ownResponse counts and logs a response net/http wrote without a handler:
// a malformed request (400), an unsupported Transfer-Encoding (501), HTTP
// version (505) or Expect (417), or headers over its own cap (431).
func (s *Server) ownResponse(c *h1Conn, code int) {
	s.metrics.rejections.With(s.metrics.code(code)).Inc()
	s.unmatched.observe("HTTP/1.1", "OTHER", code, 0)
	if st := s.live.Load(); st.accessLog {
		r := &http.Request{Method: "-", URL: &url.URL{Path: "-"}, Proto: "HTTP/1.1",
			RemoteAddr: c.RemoteAddr().String(), TLS: c.tls}
		s.logRequest(r, logEntry{status: code, remote: r.RemoteAddr})
	}
}
