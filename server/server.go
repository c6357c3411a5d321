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
	// Handler answers the requests that pass the checks, such as a Router
	// from NewRouter or an httprouter.Router of your own (label its
	// routes' metrics with Named); nil serves the built-in routes, the
	// Bottle app's /hello/:name. GET /healthz is always the server's own.
	Handler http.Handler
	// TrustedProxies are the peers (load balancers, proxies in front of
	// this server) whose X-Forwarded-For is believed: for a request from
	// one of them, the client address the per-client limits and the access
	// log use is the last address in X-Forwarded-For that is not itself
	// trusted. nil trusts none: the client is the connection's peer.
	TrustedProxies []netip.Prefix
	// ProxyProtocolFrom are the peers (L4 load balancers: HAProxy
	// send-proxy, cloud NLBs) that begin every connection with a PROXY
	// protocol header (v1 or v2) naming the client, whose address then
	// counts everywhere (limits, access log, X-Forwarded-For). A
	// connection from one of them without the header, or from any other
	// peer with one, is closed (httpsd_rejections_total{reason="proxy_protocol"}).
	// nil: no PROXY protocol. Set at New; Update does not change it.
	ProxyProtocolFrom []netip.Prefix
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
	// 443 leaves the port out of the redirect. With ServeQUIC it is also
	// the port Alt-Svc advertises for HTTP/3; zero advertises the UDP
	// socket's own port.
	HTTPSPort int
	// EarlyData accepts TLS 1.3 0-RTT on HTTP/3 connections: a returning
	// client's first requests arrive without waiting for the handshake, and
	// those that are not GET or HEAD get 425 Too Early, since an attacker
	// may replay early data. false refuses 0-RTT.
	EarlyData bool
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

// Limits bounds requests and connections. A zero timeout or
// MaxHeaderBytes takes the default in its comment; the other zero limits
// are off.
type Limits struct {
	ReadHeaderTimeout time.Duration // 5s; also bounds the TLS handshake
	ReadTimeout       time.Duration // 30s
	WriteTimeout      time.Duration // 30s: the longest a response may take to write
	IdleTimeout       time.Duration // 120s
	MaxHeaderBytes    int           // 16 KiB; larger request headers get 431
	// SendTimeout is the longest a response may make no progress: a
	// request whose client stops reading is cut this long after its last
	// write went through, like nginx's send_timeout.
	SendTimeout time.Duration

	MaxConcurrent    int           // requests served at once; more wait, then get 503
	MaxRequestsPerIP int           // requests served at once per client address; more wait, then get 429
	QueueTimeout     time.Duration // how long a request waits for a slot
	RatePerIP        float64       // requests per second per client address; more get 429
	BurstPerIP       int           // bucket size for RatePerIP; 0 = max(1, RatePerIP)
	MaxConnsPerIP    int           // open connections per client address; more are closed at once
	// MaxConns caps the open HTTPS and plain-HTTP connections together;
	// at the cap the longest idle keep-alive connections are closed to
	// make room, and new connections are refused only when none is idle.
	MaxConns     int
	MaxBodyBytes int64 // larger request bodies get 413
	// QUICRetryAbove is the rate of new QUIC connections a second above
	// which clients must first prove their address with a Retry (one more
	// round trip), as a flood of spoofed handshakes would have it; zero
	// means 1000, negative asks it of every new connection.
	QUICRetryAbove float64
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

// maxStreams is the HTTP/2 MaxConcurrentStreams for a per-client cap on
// requests in flight: no more streams per connection than one client may
// have served at once, and never more than Go's default, 250.
func maxStreams(perIP int) uint32 {
	if perIP <= 0 || perIP > 250 {
		return 250
	}
	return uint32(perIP)
}

// settings are the parts of Options that Update changes while serving.
type settings struct {
	hosts          hostSet
	hsts           []string // the header value, nil for none
	accessLog      bool
	maxHeaderBytes int
	maxBody        int64
	sendTimeout    time.Duration
	writeTimeout   time.Duration
	gate           *gate
	perIP          *ipSlots
	streams        *ipSlots // open HTTP/2 streams per client
	allStreams     *counter // open HTTP/2 streams in all
	rates          *ipRates
	handler        http.Handler
	trusted        []netip.Prefix
}

// Server serves the app over HTTPS and redirects plain HTTP to it.
type Server struct {
	logger       *slog.Logger
	access       *slog.Logger
	fastLog      *fastAccessLog // nil: access lines go through access
	metrics      *serverMetrics
	unmatched    *routeStats // requests no route answered: 404, 405, 421, ...
	healthzStats *routeStats
	builtin      *Router // the default routes
	live         atomic.Pointer[settings]
	conns        *connTracker // HTTPS and plain-HTTP connections
	fresh        freshConns
	tls          *tls.Config
	lim          Limits // as New set them
	proxyFrom    []netip.Prefix
	probe        *probe
	httpsAddr    atomic.Pointer[net.Addr] // where ServeTLS listens, for Probe
	https        *http.Server
	http         *http.Server
	h3           h3State // HTTP/3, once ServeQUIC runs
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
	s := &Server{logger: opts.Logger, access: opts.AccessLogger, metrics: newMetrics(opts.Metrics),
		lim: opts.Limits.withDefaults(), probe: newProbe(), proxyFrom: opts.ProxyProtocolFrom}
	if opts.AccessLogWriter != nil {
		s.fastLog = newFastAccessLog(opts.AccessLogWriter, opts.AccessLogJSON, opts.AccessLogLevel)
	}
	s.metrics.openStreams = func() int64 { return s.live.Load().allStreams.count() }
	s.unmatched = s.metrics.route("unmatched")
	s.healthzStats = s.metrics.route("/healthz")
	s.builtin = defaultRoutes()
	s.conns = newConnTracker(func(reason string) { s.metrics.rejections.With(reason).Inc() })
	s.h3.init(opts, s.lim, opts.Metrics)
	s.Update(opts)
	redirect := http.Handler(redirectHandler(s, opts.HTTPSPort))
	if opts.WrapRedirect != nil {
		redirect = opts.WrapRedirect(redirect)
	}
	redirect = handling(redirect)
	s.tls = TLSConfig(s.probe.getCertificate(opts.GetCertificate), opts.MinVersion, opts.ExtraALPN...)
	s.tls.VerifyConnection = func(cs tls.ConnectionState) error {
		if cs.ServerName != s.probe.name {
			s.metrics.handshake(cs)
		}
		return nil
	}
	s.https = s.newHTTPServer(s.app(nil))
	s.serveHTTP2(s.https, maxStreams(opts.Limits.MaxRequestsPerIP))
	s.http = s.newHTTPServer(redirect)
	return s
}

// newHTTPServer returns an http.Server for h with the limits' timeouts.
func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.lim.ReadHeaderTimeout,
		ReadTimeout:       s.lim.ReadTimeout,
		WriteTimeout:      s.lim.WriteTimeout,
		IdleTimeout:       s.lim.IdleTimeout,
		// The app handler enforces MaxHeaderBytes itself (and counts
		// the 431s); net/http's own cap is the backstop.
		MaxHeaderBytes: 2 * s.lim.MaxHeaderBytes,
		ErrorLog:       newErrorLog(s.logger),
		ConnContext:    withConn,
		ConnState:      s.connState,
		// OPTIONS * goes through the same checks as every request.
		DisableGeneralOptionsHandler: true,
	}
}

// Update applies the handler, trusted proxies, hosts, HSTS, access log and
// request limits of opts to requests from now on; requests in flight finish
// with the ones they started with. Timeouts, TLS settings, the redirect port and the
// HTTP/2 stream cap stay as New set them; MaxHeaderBytes may be lowered,
// not raised above New's (net/http's own cap is sized from it).
func (s *Server) Update(opts Options) {
	lim := opts.Limits.withDefaults()
	old := s.live.Load()
	st := &settings{
		hosts:          newHostSet(opts.Hosts),
		hsts:           hstsHeader(opts.HSTSMaxAge),
		accessLog:      opts.AccessLog,
		maxHeaderBytes: min(lim.MaxHeaderBytes, s.lim.MaxHeaderBytes),
		maxBody:        lim.MaxBodyBytes,
		sendTimeout:    lim.SendTimeout,
		writeTimeout:   s.lim.WriteTimeout,
		gate:           newGate(lim.MaxConcurrent, lim.QueueTimeout),
		perIP:          newIPSlots(lim.MaxRequestsPerIP, lim.QueueTimeout),
		streams:        newIPSlots(2*lim.MaxRequestsPerIP, 0),
		allStreams:     newCounter(16 * lim.MaxConcurrent),
		rates:          newIPRates(lim.RatePerIP, lim.BurstPerIP),
		handler:        opts.Handler,
		trusted:        opts.TrustedProxies,
	}
	if st.handler == nil {
		st.handler = s.builtin
	}
	if old != nil {
		// Keep counting the requests in flight, and keep the clients'
		// buckets, where the limits did not change.
		if old.gate != nil && st.gate != nil && cap(old.gate.slots) == cap(st.gate.slots) {
			st.gate.slots = old.gate.slots
		}
		if old.perIP.same(st.perIP) {
			st.perIP = old.perIP
		}
		if old.streams.same(st.streams) {
			st.streams = old.streams
		}
		if old.allStreams != nil && st.allStreams != nil && old.allStreams.max == st.allStreams.max {
			st.allStreams = old.allStreams
		}
		if old.rates.same(st.rates) {
			st.rates = old.rates
		}
	}
	s.live.Store(st)
	s.conns.maxPerIP.Store(int64(lim.MaxConnsPerIP))
	s.conns.max.Store(int64(lim.MaxConns))
}

// ServeTLS accepts TLS connections on l until Shutdown; like
// http.Server.Serve it returns http.ErrServerClosed after Shutdown.
func (s *Server) ServeTLS(l net.Listener) error {
	addr := l.Addr()
	s.httpsAddr.Store(&addr)
	return s.https.Serve(s.listener(l, s.tls))
}

// ServeRedirect answers plain-HTTP connections on l with redirects to HTTPS
// until Shutdown.
func (s *Server) ServeRedirect(l net.Listener) error {
	return s.http.Serve(s.listener(l, nil))
}

func (s *Server) listener(l net.Listener, conf *tls.Config) net.Listener {
	cl := newConnListener(l, s.conns, conf)
	cl.timeout = func() time.Duration { return s.lim.ReadHeaderTimeout }
	cl.handshakeFailed = s.handshakeFailed
	cl.h1 = func(c net.Conn, state *tls.ConnectionState) net.Conn {
		return &h1Conn{Conn: c, tls: state, ownResponse: s.ownResponse}
	}
	cl.proxyFrom = s.proxyFrom
	cl.proxyRefused = func() { s.metrics.rejections.With("proxy_protocol").Inc() }
	go cl.run()
	return cl
}

// Shutdown stops accepting connections (HTTP/3 ones get GOAWAY) and waits
// for requests in flight until ctx is done; then it closes the remaining
// connections and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	errc := make(chan error, 3)
	for _, srv := range []*http.Server{s.https, s.http} {
		go func() { errc <- srv.Shutdown(ctx) }()
	}
	go func() { errc <- s.shutdownQUIC(ctx) }()
	s.fresh.closeSilent()
	err := errors.Join(<-errc, <-errc, <-errc)
	if err != nil {
		s.https.Close()
		s.http.Close()
		s.closeQUIC()
	}
	return err
}

// Handler returns the HTTPS handler with all its middleware, for tests and
// embedding.
func (s *Server) Handler() http.Handler {
	return s.https.Handler
}

// OpenConns returns the number of HTTPS and plain-HTTP connections open.
func (s *Server) OpenConns() int { return s.conns.open() }

// SetSessionTicketKeys makes the HTTPS listener encrypt new session
// tickets with keys[0] and accept tickets made with any of keys, as
// tls.Config.SetSessionTicketKeys does; replicas given the same keys
// resume each other's sessions. Until it is called, crypto/tls makes and
// rotates its own keys.
func (s *Server) SetSessionTicketKeys(keys [][32]byte) {
	s.tls.SetSessionTicketKeys(keys)
}
