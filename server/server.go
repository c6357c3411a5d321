// Package server is httpsd's HTTP side: the routes and handlers, what every
// HTTPS request passes through (limits, host check, security headers, panic
// recovery, metrics, access log), the plain-HTTP redirector, the admin
// listener and the http.Servers with their timeouts. It takes plain typed
// Options and serves on listeners its caller opens.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/httpsd/httpsd/metrics"
)

// Options configures a Server. Zero timeouts and sizes take the defaults
// given in Limits; other zero limits are off.
type Options struct {
	// Hosts are the names (DNS names, "*.example.com" wildcards or IP
	// literals) the server answers for; requests for any other Host or SNI
	// get 421 Misdirected Request. Empty refuses every request but /healthz.
	Hosts []string
	// GetCertificate supplies the certificate for each TLS handshake.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// ExtraALPN lists ALPN protocols offered after h2 and http/1.1, such as
	// "acme-tls/1" for ACME tls-alpn-01 challenges; nil adds none.
	ExtraALPN []string
	// WrapRedirect wraps the plain-HTTP redirect handler, e.g. to answer
	// ACME http-01 challenges before redirecting; nil serves redirects only.
	WrapRedirect func(http.Handler) http.Handler
	// MinVersion is the lowest TLS version accepted; zero means TLS 1.2.
	MinVersion uint16
	// HSTSMaxAge is sent as Strict-Transport-Security max-age; zero or
	// negative sends no header.
	HSTSMaxAge time.Duration
	// HTTPSPort is the port plain-HTTP requests are redirected to; zero or
	// 443 leaves the port out of the redirect.
	HTTPSPort int
	// AccessLog logs one line per HTTPS request at info level.
	AccessLog bool
	// AccessLogger receives the access log; nil means Logger.
	AccessLogger *slog.Logger
	// AccessLogWriter, when not nil, receives the access log instead, in
	// slog's text format (in its JSON format with AccessLogJSON), written
	// without slog's per-record costs; lines are written while
	// AccessLogLevel allows info (nil: always).
	AccessLogWriter io.Writer
	AccessLogJSON   bool
	AccessLogLevel  slog.Leveler
	// Limits bounds the time, size and number of requests.
	Limits Limits
	// Logger receives the access log and errors; nil discards them.
	Logger *slog.Logger
	// Metrics receives the server's Prometheus series; nil registers them
	// nowhere.
	Metrics *metrics.Registry
}

// Limits bounds requests. A zero timeout or MaxHeaderBytes takes the
// default in its comment; the other zero limits are off.
type Limits struct {
	ReadHeaderTimeout time.Duration // 5s
	ReadTimeout       time.Duration // 30s
	WriteTimeout      time.Duration // 30s
	IdleTimeout       time.Duration // 120s
	MaxHeaderBytes    int           // 16 KiB; larger request headers get 431

	MaxConcurrent int           // requests served at once; more wait, then get 503
	QueueTimeout  time.Duration // how long a request waits for a slot
	RatePerIP     float64       // requests per second per client address; more get 429
	BurstPerIP    int           // bucket size for RatePerIP; 0 = max(1, RatePerIP)
	MaxConnsPerIP int           // open connections per client address; more are closed at once
	MaxBodyBytes  int64         // larger request bodies get 413
}

func (l Limits) withDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, 5*time.Second)
	def(&l.ReadTimeout, 30*time.Second)
	def(&l.WriteTimeout, 30*time.Second)
	def(&l.IdleTimeout, 120*time.Second)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 16 << 10
	}
	return l
}

// settings are the parts of Options that Update changes while serving.
type settings struct {
	hosts          hostSet
	hsts           []string // the header value, nil for none
	accessLog      bool
	maxHeaderBytes int
	maxBody        int64
	gate           *gate
	rates          *ipRates
}

// Server serves the app over HTTPS and redirects plain HTTP to it.
type Server struct {
	logger    *slog.Logger
	access    *slog.Logger
	fastLog   *fastAccessLog // nil: access lines go through access
	metrics   *serverMetrics
	unmatched *routeStats // requests no route answered: 404, 405, 421, ...
	live      atomic.Pointer[settings]
	maxConns  atomic.Int64 // Limits.MaxConnsPerIP
	https     *http.Server
	http      *http.Server
}

// New returns a Server for opts; it does not listen yet.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = new(metrics.Registry)
	}
	if opts.AccessLogger == nil {
		opts.AccessLogger = opts.Logger
	}
	s := &Server{logger: opts.Logger, access: opts.AccessLogger, metrics: newMetrics(opts.Metrics)}
	if opts.AccessLogWriter != nil {
		s.fastLog = newFastAccessLog(opts.AccessLogWriter, opts.AccessLogJSON, opts.AccessLogLevel)
	}
	s.unmatched = s.metrics.route("unmatched")
	s.Update(opts)
	lim := opts.Limits.withDefaults()
	newServer := func(h http.Handler, tlsConf *tls.Config) *http.Server {
		return &http.Server{
			Handler:           h,
			TLSConfig:         tlsConf,
			ReadHeaderTimeout: lim.ReadHeaderTimeout,
			ReadTimeout:       lim.ReadTimeout,
			WriteTimeout:      lim.WriteTimeout,
			IdleTimeout:       lim.IdleTimeout,
			// The app handler enforces MaxHeaderBytes itself (and counts
			// the 431s); net/http's own cap is the backstop.
			MaxHeaderBytes: 2 * lim.MaxHeaderBytes,
			ErrorLog:       newErrorLog(opts.Logger, s.metrics.handshakeFailure),
		}
	}
	redirect := http.Handler(redirectHandler(s, opts.HTTPSPort))
	if opts.WrapRedirect != nil {
		redirect = opts.WrapRedirect(redirect)
	}
	tlsConf := TLSConfig(opts.GetCertificate, opts.MinVersion, opts.ExtraALPN...)
	tlsConf.VerifyConnection = s.metrics.handshake
	s.https = newServer(s.app(routes(s.metrics)), tlsConf)
	s.http = newServer(redirect, nil)
	return s
}

// Update applies the hosts, HSTS, access log and request limits of opts to
// requests from now on. Timeouts, TLS settings and the redirect port stay
// as New set them.
func (s *Server) Update(opts Options) {
	lim := opts.Limits.withDefaults()
	st := &settings{
		hosts:          newHostSet(opts.Hosts),
		hsts:           hstsHeader(opts.HSTSMaxAge),
		accessLog:      opts.AccessLog,
		maxHeaderBytes: lim.MaxHeaderBytes,
		maxBody:        lim.MaxBodyBytes,
		gate:           newGate(lim.MaxConcurrent, lim.QueueTimeout),
		rates:          newIPRates(lim.RatePerIP, lim.BurstPerIP),
	}
	if old := s.live.Load(); old != nil && old.gate != nil && st.gate != nil &&
		cap(old.gate.slots) == cap(st.gate.slots) {
		st.gate = old.gate // keep counting the requests in flight
	}
	s.live.Store(st)
	s.maxConns.Store(int64(lim.MaxConnsPerIP))
}

// ServeTLS accepts TLS connections on l until Shutdown; like
// http.Server.Serve it returns http.ErrServerClosed after Shutdown.
func (s *Server) ServeTLS(l net.Listener) error {
	return s.https.ServeTLS(s.limitConns(l), "", "")
}

// ServeRedirect answers plain-HTTP connections on l with redirects to HTTPS
// until Shutdown.
func (s *Server) ServeRedirect(l net.Listener) error {
	return s.http.Serve(s.limitConns(l))
}

func (s *Server) limitConns(l net.Listener) net.Listener {
	return &perIPListener{Listener: l, max: &s.maxConns, counts: map[netip.Addr]int{},
		rejected: func() { s.metrics.rejections.With("conn_per_ip").Inc() }}
}

// Shutdown stops accepting connections and waits for requests in flight
// until ctx is done; then it closes the remaining connections and returns
// ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	errc := make(chan error, 2)
	for _, srv := range []*http.Server{s.https, s.http} {
		go func() { errc <- srv.Shutdown(ctx) }()
	}
	err := errors.Join(<-errc, <-errc)
	if err != nil {
		s.https.Close()
		s.http.Close()
	}
	return err
}

// Handler returns the HTTPS handler with all its middleware, for tests and
// embedding.
func (s *Server) Handler() http.Handler {
	return s.https.Handler
}
