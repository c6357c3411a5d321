package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

var nosniff = []string{"nosniff"}

func hstsHeader(maxAge time.Duration) []string {
	if maxAge <= 0 {
		return nil
	}
	return []string{"max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)}
}

var (
	recorders       = sync.Pool{New: func() any { return new(recorder) }}
	connectionClose = []string{"close"}
)

// app wraps next (nil: the handler of the current settings) in what every
// HTTPS request passes through: metrics and the access log around it, then
// security headers, panic recovery and the checks of serve, with the
// settings current when the request arrived.
func (s *Server) app(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := s.live.Load()
		start := time.Now()
		handled(w, r)
		rec := recorders.Get().(*recorder)
		*rec = recorder{ResponseWriter: w, srv: s, route: s.unmatched, start: start,
			send: st.sendTimeout, total: st.writeTimeout, idle: s.lim.IdleTimeout, client: st.clientAddr(r), mux: r.ProtoMajor >= 2}
		s.metrics.inFlight.Inc()
		// Deferred, so that a handler aborting with http.ErrAbortHandler
		// (as the reverse proxy does) is counted and logged too.
		defer func() {
			rec.releaseSlots()
			rec.closeStream()
			s.metrics.inFlight.Dec()
			e := logEntry{status: rec.status, bytes: rec.bytes, elapsed: time.Since(start), remote: rec.client,
				upstream: rec.upstream, upstreamTime: rec.upstreamTime}
			route := rec.route
			*rec = recorder{}
			recorders.Put(rec)
			if e.status == 0 {
				e.status = http.StatusOK
			}
			route.observe(r.Proto, r.Method, e.status, e.elapsed)
			if st.accessLog {
				s.logRequest(r, e)
			}
		}()
		h := next
		if h == nil {
			h = st.handler
		}
		if r.ProtoMajor >= 2 {
			s.openStream(st, rec)
		}
		s.serve(st, rec, r, h)
		rec.releaseSlots() // the app's work is done; what is left is the network's
		rec.finish(r)
	})
}

// openStream counts an HTTP/2 or HTTP/3 request as an open stream of its client
// until its answer is sent (app flushes it before returning, so that a
// client that does not read is held to this count): each client may have
// 2 × MaxRequestsPerIP streams open, all clients 16 × MaxConcurrent. A
// stream over either is reset at once (no answer is written that the client
// could leave unread).
func (s *Server) openStream(st *settings, rec *recorder) {
	key := clientKey(rec.client)
	if st.streams != nil {
		held := st.streams.acquire(context.Background(), key)
		if held == nil {
			s.abortStream(rec, "streams_per_ip")
		}
		rec.streams, rec.streamSlot, rec.streamKey = st.streams, held, key
	}
	if !st.allStreams.tryAcquire() {
		s.abortStream(rec, "streams")
	}
	rec.allStreams = st.allStreams
}

// abortStream resets the request's stream without an answer.
func (s *Server) abortStream(rec *recorder, reason string) {
	s.metrics.rejections.With(reason).Inc()
	rec.status = http.StatusTooManyRequests // for the log and metrics
	panic(http.ErrAbortHandler)
}

// fromConn completes r with what its connection knows, and reports whether
// the connection must be closed after the response. HTTP/1 connections
// reach net/http as plaintext (see h1Conn), so r.TLS comes from here.
func fromConn(r *http.Request) (mustClose bool) {
	c, ok := r.Context().Value(connKey{}).(*h1Conn)
	if !ok {
		return false
	}
	if r.TLS == nil {
		r.TLS = c.tls
	}
	c.handling.Store(true)
	return c.smugg.Load()
}

// serve answers r through next unless a check refuses it: the per-client
// rate (429), header size (431), a malformed Host (400), an unknown host
// (421), body size (413), the per-client cap on requests in flight (429)
// or the concurrency cap (503). /healthz skips the rate, host and
// concurrency checks so that probes are never queued behind user traffic
// (and the rate limit when they come from loopback).
func (s *Server) serve(st *settings, w *recorder, r *http.Request, next http.Handler) {
	h := w.Header()
	h["X-Content-Type-Options"] = nosniff
	if st.hsts != nil {
		h["Strict-Transport-Security"] = st.hsts
	}
	defer s.recoverPanic(w, r)
	probe := r.URL.Path == "/healthz"
	var client netip.Addr
	if st.rates != nil || st.perIP != nil {
		client = clientKey(w.client)
	}
	// Health probes skip the queue, not the rate limit, but for local
	// ones (httpsd's own, a sidecar's).
	if st.rates != nil && !(probe && clientAddr(w.client).IsLoopback()) {
		if ok, wait := st.rates.allow(client, time.Now()); !ok {
			h.Set("Retry-After", retryAfter(wait))
			s.reject(w, http.StatusTooManyRequests, "429 too many requests")
			return
		}
	}
	if headerBytes(r) > st.maxHeaderBytes {
		s.reject(w, http.StatusRequestHeaderFieldsTooLarge, "431 request header fields too large")
		return
	}
	if !validHost(r.Host) {
		closeAfter(h, r)
		s.reject(w, http.StatusBadRequest, "400 bad request: malformed Host")
		return
	}
	if !probe && !s.knownHost(st, r) {
		s.reject(w, http.StatusMisdirectedRequest, "421 misdirected request")
		return
	}
	if st.maxBody > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > st.maxBody {
			closeAfter(h, r)
			s.reject(w, http.StatusRequestEntityTooLarge, "413 request body too large")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, st.maxBody)
	}
	if probe {
		w.route = s.healthzStats
		if getOrHead(w, r) {
			serveHealthz(w)
		}
		return
	}
	if st.perIP != nil {
		slot := st.perIP.acquire(r.Context(), client)
		if slot == nil {
			h.Set("Retry-After", "1")
			s.metrics.rejections.With("requests_per_ip").Inc()
			http.Error(w, "429 too many requests in flight from your address", http.StatusTooManyRequests)
			return
		}
		w.perIP, w.slot, w.slotKey = st.perIP, slot, client
	}
	if st.gate != nil {
		if !st.gate.acquire(r.Context()) {
			h.Set("Retry-After", "1")
			s.reject(w, http.StatusServiceUnavailable, "503 server busy, try again")
			return
		}
		w.gate = st.gate
	}
	if alt := s.h3.altSvc.Load(); alt != nil && r.ProtoMajor < 3 {
		h["Alt-Svc"] = *alt // HTTP/3 is served: on answers, not on refusals
	}
	next.ServeHTTP(w, r)
}

// closeAfter asks for the connection to be closed after the response,
// where the protocol has a Connection header: HTTP/3 forbids it, and
// HTTP/2 leaves it out.
func closeAfter(h http.Header, r *http.Request) {
	if r.ProtoMajor < 3 {
		h["Connection"] = connectionClose
	}
}

func (s *Server) reject(w http.ResponseWriter, code int, msg string) {
	s.metrics.rejections.With(s.metrics.code(code)).Inc()
	http.Error(w, msg, code)
}

// knownHost reports whether the Host header and the TLS SNI, if any, name
// a served host.
func (s *Server) knownHost(st *settings, r *http.Request) bool {
	if r.TLS != nil && r.TLS.ServerName != "" && !st.hosts.contains(r.TLS.ServerName) {
		return false
	}
	return st.hosts.contains(hostOnly(r.Host))
}

// headerBytes approximates the request's header size as net/http counts
// it for MaxHeaderBytes: the request line and every header line.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + len(r.Host) + 12
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// recoverPanic turns a panic into a 500 and an error log line with the
// stack; the server keeps running. http.ErrAbortHandler passes through.
func (s *Server) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.logger.Error("panic serving request", "method", r.Method, "path", r.URL.Path,
		"panic", v, "stack", string(debug.Stack()))
	if rec, ok := w.(*recorder); ok && !rec.unsent() {
		panic(http.ErrAbortHandler) // part of the answer is out: cut it, as net/http does
	}
	http.Error(w, "500 internal server error", http.StatusInternalServerError)
}

// logEntry is what the access log says of a request besides the request.
type logEntry struct {
	status       int
	bytes        int64
	elapsed      time.Duration
	remote       string // the client address (see Options.TrustedProxies)
	upstream     string // the upstream that answered, if proxied
	upstreamTime time.Duration
}

func (s *Server) logRequest(r *http.Request, e logEntry) {
	if s.fastLog != nil {
		s.fastLog.log(r, e)
		return
	}
	tlsVersion := ""
	if r.TLS != nil {
		tlsVersion = tls.VersionName(r.TLS.Version)
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.Int("status", e.status),
		slog.Int64("bytes", e.bytes),
		slog.Duration("duration", e.elapsed),
		slog.String("remote", e.remote),
		slog.String("proto", r.Proto),
		slog.String("tls", tlsVersion),
	}
	if e.upstream != "" {
		attrs = append(attrs, slog.String("upstream", e.upstream), slog.Duration("upstream_duration", e.upstreamTime))
	}
	s.access.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}
