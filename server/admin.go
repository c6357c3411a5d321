package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/httpsd/httpsd/metrics"
)

// AdminOptions configures the admin listener.
type AdminOptions struct {
	// Metrics is served at /metrics; nil serves no metrics.
	Metrics *metrics.Registry
	// Ready reports why the server is not ready, or nil when it is; nil
	// counts as always ready.
	Ready func() error
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
}

// NewAdmin returns the admin server: /metrics, /healthz (alive), /readyz
// (200 when Ready says so, else 503 with the reason) and, when asked,
// /debug/pprof/. Its caller serves it on a listener it opens, plain HTTP.
func NewAdmin(opts AdminOptions) *http.Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if opts.Ready != nil {
			if err := opts.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		io.WriteString(w, "ready\n")
	})
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      time.Minute, // a CPU profile takes 30s
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          newErrorLog(opts.Logger, func(string) {}),
	}
}
