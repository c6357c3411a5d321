// Package server is httpsd's HTTP side: the routes and handlers, the
// middleware every HTTPS response passes through (access log, security
// headers, panic recovery, host check), the plain-HTTP redirector and the
// two http.Servers with their timeouts. It takes plain typed Options and
// serves on listeners its caller opens.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Options configures a Server. Zero timeouts and sizes are replaced by the
// defaults below; nothing is left unlimited.
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
	// Limits bounds the time and size of requests.
	Limits Limits
	// Logger receives the access log and errors; nil discards them.
	Logger *slog.Logger
}

// Limits are the http.Server timeouts and sizes. A zero field takes the
// default given in its comment.
type Limits struct {
	ReadHeaderTimeout time.Duration // 5s
	ReadTimeout       time.Duration // 30s
	WriteTimeout      time.Duration // 30s
	IdleTimeout       time.Duration // 120s
	MaxHeaderBytes    int           // 16 KiB
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

// Server serves the app over HTTPS and redirects plain HTTP to it.
type Server struct {
	opts  Options // with defaults applied
	hosts hostSet
	https *http.Server
	http  *http.Server
}

// New returns a Server for opts; it does not listen yet.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	lim := opts.Limits.withDefaults()
	hosts := newHostSet(opts.Hosts)
	newServer := func(h http.Handler, tlsConf *tls.Config) *http.Server {
		return &http.Server{
			Handler:           h,
			TLSConfig:         tlsConf,
			ReadHeaderTimeout: lim.ReadHeaderTimeout,
			ReadTimeout:       lim.ReadTimeout,
			WriteTimeout:      lim.WriteTimeout,
			IdleTimeout:       lim.IdleTimeout,
			MaxHeaderBytes:    lim.MaxHeaderBytes,
			ErrorLog:          newErrorLog(opts.Logger),
		}
	}
	redirect := redirectHandler(hosts, opts.HTTPSPort)
	if opts.WrapRedirect != nil {
		redirect = opts.WrapRedirect(redirect)
	}
	return &Server{
		opts:  opts,
		hosts: hosts,
		https: newServer(appHandler(opts, hosts), TLSConfig(opts.GetCertificate, opts.MinVersion, opts.ExtraALPN...)),
		http:  newServer(redirect, nil),
	}
}

// ServeTLS accepts TLS connections on l until Shutdown; like
// http.Server.Serve it returns http.ErrServerClosed after Shutdown.
func (s *Server) ServeTLS(l net.Listener) error {
	return s.https.ServeTLS(l, "", "")
}

// ServeRedirect answers plain-HTTP connections on l with redirects to HTTPS
// until Shutdown.
func (s *Server) ServeRedirect(l net.Listener) error {
	return s.http.Serve(l)
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
