package server

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// checkHost answers 421 Misdirected Request when the Host header or the
// TLS SNI names a host that is not served. /healthz is exempt so that
// probes addressing the server by IP keep working.
func checkHost(hosts hostSet, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sni := ""
		if r.TLS != nil {
			sni = r.TLS.ServerName
		}
		if (!hosts.contains(hostOnly(r.Host)) || (sni != "" && !hosts.contains(sni))) && r.URL.Path != "/healthz" {
			http.Error(w, "421 misdirected request", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanic turns a panic in next into a 500 and an error log line with
// the stack; the server keeps running. http.ErrAbortHandler passes through.
func recoverPanic(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			logger.Error("panic serving request", "method", r.Method, "path", r.URL.Path,
				"panic", v, "stack", string(debug.Stack()))
			http.Error(w, "500 internal server error", http.StatusInternalServerError)
		}()
		next.ServeHTTP(w, r)
	})
}

// secureHeaders adds X-Content-Type-Options: nosniff and, when maxAge is
// positive, Strict-Transport-Security to every response.
func secureHeaders(maxAge time.Duration, next http.Handler) http.Handler {
	nosniff := []string{"nosniff"}
	var hsts []string
	if maxAge > 0 {
		hsts = []string{"max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["X-Content-Type-Options"] = nosniff
		if hsts != nil {
			h["Strict-Transport-Security"] = hsts
		}
		next.ServeHTTP(w, r)
	})
}

// accessLog logs one line per request after it is answered.
func accessLog(logger *slog.Logger, next http.Handler) http.Handler {
	pool := sync.Pool{New: func() any { return new(recorder) }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := pool.Get().(*recorder)
		*rec = recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		status, n := rec.status, rec.bytes
		*rec = recorder{}
		pool.Put(rec)
		if status == 0 {
			status = http.StatusOK
		}
		tlsVersion := ""
		if r.TLS != nil {
			tlsVersion = tls.VersionName(r.TLS.Version)
		}
		logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method),
			slog.String("host", r.Host),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Int64("bytes", n),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
			slog.String("proto", r.Proto),
			slog.String("tls", tlsVersion),
		)
	})
}

// recorder is a ResponseWriter that notes the status and body size.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
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
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
