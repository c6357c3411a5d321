package server

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
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
	// Warnings lists what /readyz reports without failing, one line each
	// (e.g. a shared storage down while the certificates held serve); nil
	// reports none.
	Warnings func() []string
	// Live reports why the server does not serve (e.g. Server.Probe: it
	// no longer answers HTTPS), or nil when it does; /healthz answers 503
	// then. nil counts as always live.
	Live func(context.Context) error
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool
	// Public accepts requests for any Host. Otherwise only loopback names
	// and addresses, and the host of Addr, are accepted (421 for others),
	// so that a web page cannot reach the admin listener through DNS
	// rebinding.
	Public bool
	// Addr is the address the admin listener is on, HOST:PORT.
	Addr string
	// Logger receives errors; nil discards them.
	Logger *slog.Logger
}

// Admin is the admin server: /metrics, /healthz (alive: Live says so),
// /readyz (200 when Ready says so, else 503 with the reason) and, when
// asked, /debug/pprof/, over plain HTTP, with at most adminMaxConns
// connections.
type Admin struct {
	srv   *http.Server
	conns *connTracker
}

// Serve answers on l, which its caller opened, until Shutdown.
func (a *Admin) Serve(l net.Listener) error {
	cl := newConnListener(l, a.conns, nil)
	cl.h1 = func(c net.Conn, _ *tls.ConnectionState) net.Conn { return c }
	go cl.run()
	return a.srv.Serve(cl)
}

// Shutdown stops the admin server as http.Server.Shutdown does.
func (a *Admin) Shutdown(ctx context.Context) error { return a.srv.Shutdown(ctx) }

// NewAdmin returns the admin server for opts.
func NewAdmin(opts AdminOptions) *Admin {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if opts.Live != nil {
			ctx, cancel := context.WithTimeout(r.Context(), liveTimeout)
			defer cancel()
			if err := opts.Live(ctx); err != nil {
				opts.Logger.Warn("health check failed: the server does not answer HTTPS", "err", err)
				http.Error(w, "not serving: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		var warnings string
		if opts.Warnings != nil {
			for _, line := range opts.Warnings() {
				warnings += "warning: " + line + "\n"
			}
		}
		if opts.Ready != nil {
			if err := opts.Ready(); err != nil {
				http.Error(w, strings.TrimSuffix("not ready: "+err.Error()+"\n"+warnings, "\n"), http.StatusServiceUnavailable)
				return
			}
		}
		io.WriteString(w, "ready\n"+warnings)
	})
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	var h http.Handler = mux
	if !opts.Public {
		h = loopbackHostsOnly(mux, opts.Addr)
	}
	conns := newConnTracker(func(string) {})
	conns.max.Store(adminMaxConns)
	return &Admin{conns: conns, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      time.Minute, // a CPU profile takes 30s
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          newErrorLog(opts.Logger),
		ConnState:         conns.connState,
	}}
}

// liveTimeout bounds how long /healthz waits for Live: less than the 5s
// "httpsd health" waits for /healthz.
const liveTimeout = 3 * time.Second

// adminMaxConns bounds the admin listener's connections: it needs few,
// and must not use up the file descriptors the HTTPS listener needs.
const adminMaxConns = 64

// loopbackHostsOnly refuses requests whose Host is neither a loopback
// name or address nor the host of addr.
func loopbackHostsOnly(h http.Handler, addr string) http.Handler {
	own, _, _ := net.SplitHostPort(addr)
	own = normalizeHost(own)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := normalizeHost(hostOnly(r.Host))
		ip, err := netip.ParseAddr(host)
		ok := validHost(r.Host) && (host == "localhost" || err == nil && ip.IsLoopback() || host == own && own != "")
		if !ok {
			http.Error(w, "421 misdirected request: the admin listener answers loopback names only", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}
