package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
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

// app wraps next in what every HTTPS request passes through: metrics and
// the access log around it, then security headers, panic recovery and the
// checks of serve, with the settings current when the request arrived.
func (s *Server) app(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := s.live.Load()
		start := time.Now()
		if fromConn(r) {
			w.Header()["Connection"] = connectionClose
		}
		rec := recorders.Get().(*recorder)
		*rec = recorder{ResponseWriter: w, route: s.unmatched, start: start, send: st.sendTimeout, total: st.writeTimeout}
		s.metrics.inFlight.Inc()
		// Deferred, so that a handler aborting with http.ErrAbortHandler
		// (as the reverse proxy does) is counted and logged too.
		defer func() {
			s.metrics.inFlight.Dec()
			elapsed := time.Since(start)
			status, n, route := rec.status, rec.bytes, rec.route
			*rec = recorder{}
			recorders.Put(rec)
			if status == 0 {
				status = http.StatusOK
			}
			route.observe(r.Method, status, elapsed)
			if st.accessLog {
				s.logRequest(r, status, n, elapsed)
			}
		}()
		s.serve(st, rec, r, next)
	})
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
// concurrency checks so that probes are never queued behind user traffic.
func (s *Server) serve(st *settings, w http.ResponseWriter, r *http.Request, next http.Handler) {
	h := w.Header()
	h["X-Content-Type-Options"] = nosniff
	if st.hsts != nil {
		h["Strict-Transport-Security"] = st.hsts
	}
	defer s.recoverPanic(w, r)
	probe := r.URL.Path == "/healthz"
	var client netip.Addr
	if st.rates != nil || st.perIP != nil {
		client = clientKey(r.RemoteAddr)
	}
	if st.rates != nil && !probe {
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
		h["Connection"] = connectionClose
		s.reject(w, http.StatusBadRequest, "400 bad request: malformed Host")
		return
	}
	if !probe && !s.knownHost(st, r) {
		s.reject(w, http.StatusMisdirectedRequest, "421 misdirected request")
		return
	}
	if st.maxBody > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > st.maxBody {
			h["Connection"] = connectionClose
			s.reject(w, http.StatusRequestEntityTooLarge, "413 request body too large")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, st.maxBody)
	}
	if st.perIP != nil && !probe {
		slot := st.perIP.acquire(r.Context(), client)
		if slot == nil {
			h.Set("Retry-After", "1")
			s.metrics.rejections.With("requests_per_ip").Inc()
			http.Error(w, "429 too many requests in flight from your address", http.StatusTooManyRequests)
			return
		}
		defer st.perIP.release(client, slot)
	}
	if st.gate != nil && !probe {
		if !st.gate.acquire(r.Context()) {
			h.Set("Retry-After", "1")
			s.reject(w, http.StatusServiceUnavailable, "503 server busy, try again")
			return
		}
		defer st.gate.release()
	}
	next.ServeHTTP(w, r)
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
	http.Error(w, "500 internal server error", http.StatusInternalServerError)
}

func (s *Server) logRequest(r *http.Request, status int, n int64, elapsed time.Duration) {
	if s.fastLog != nil {
		s.fastLog.log(r, status, n, elapsed)
		return
	}
	tlsVersion := ""
	if r.TLS != nil {
		tlsVersion = tls.VersionName(r.TLS.Version)
	}
	s.access.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Int64("bytes", n),
		slog.Duration("duration", elapsed),
		slog.String("remote", r.RemoteAddr),
		slog.String("proto", r.Proto),
		slog.String("tls", tlsVersion),
	)
}

// recorder is a ResponseWriter that notes the status, body size and the
// route that answered, and keeps a write deadline measured from the last
// progress (see progress).
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	route  *routeStats

	start   time.Time     // when the request arrived
	send    time.Duration // Limits.SendTimeout; 0: none
	total   time.Duration // Limits.WriteTimeout, counted from start
	unarmed int           // bytes written since the deadline was last checked
	lastArm time.Time     // when the deadline was last moved
}

// armAfter is how many bytes may be written before the write deadline is
// moved: less than net/http buffers (4 KiB), so a write that can block on
// the client always has a deadline measured from recent progress.
const armAfter = 2 << 10

// progress is called before writing n bytes. It moves the write deadline
// to SendTimeout from now (but no later than WriteTimeout from the start),
// at most four times per SendTimeout: a client that stops reading gets its
// request cut SendTimeout after the last write that went through, and its
// slots back, not only when the whole response's time is up.
func (rec *recorder) progress(n int) {
	if rec.send <= 0 {
		return
	}
	if rec.unarmed += n; rec.unarmed < armAfter {
		return
	}
	rec.unarmed = 0
	now := time.Now()
	if now.Sub(rec.lastArm) < rec.send/4 {
		return
	}
	rec.lastArm = now
	d := now.Add(rec.send)
	if end := rec.start.Add(rec.total); rec.total > 0 && end.Before(d) {
		d = end
	}
	http.NewResponseController(rec.ResponseWriter).SetWriteDeadline(d)
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	rec.progress(len(p))
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += int64(n)
	return n, err
}

// WriteString writes without converting s to a byte slice when the
// underlying writer can (net/http's does).
func (rec *recorder) WriteString(s string) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	rec.progress(len(s))
	var n int
	var err error
	if sw, ok := rec.ResponseWriter.(io.StringWriter); ok {
		n, err = sw.WriteString(s)
	} else {
		n, err = rec.ResponseWriter.Write([]byte(s))
	}
	rec.bytes += int64(n)
	return n, err
}

// Flush sends what is buffered to the client (for streaming responses).
func (rec *recorder) Flush() {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	rec.progress(armAfter)
	http.NewResponseController(rec.ResponseWriter).Flush()
}

// Hijack hands the connection over, for WebSockets over HTTP/1.1.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err == nil && rec.status == 0 {
		rec.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
