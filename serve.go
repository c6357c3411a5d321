package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/httpsd/httpsd/certs"
	"github.com/httpsd/httpsd/metrics"
	"github.com/httpsd/httpsd/proxy"
	"github.com/httpsd/httpsd/server"
)

// daemon is a running serve: its config, certificates, servers and metrics.
type daemon struct {
	file      string // config file, "" for defaults; re-read on SIGHUP
	lookupEnv func(string) (string, bool)
	logger    *slog.Logger
	level     *slog.LevelVar
	reg       *metrics.Registry
	reloads   reloadCounters

	mu  sync.Mutex // guards cfg, src.hosts and app during reloads
	cfg *Config
	src *certSource
	srv *server.Server
	app *app           // the routes' handler and proxies
	pm  *proxy.Metrics // the proxies' series
	up  bool           // listeners serving; guarded by mu

	fdLimit uint64 // open file limit after raising it; 0 where there is none
}

// serve runs the HTTPS, redirect and admin listeners until ctx is
// cancelled, re-reading the config on every signal from hup, then shuts
// down gracefully within limits.shutdown_timeout.
func serve(ctx context.Context, cfg *Config, file string, lookupEnv func(string) (string, bool), hup <-chan os.Signal, stderr io.Writer) error {
	d := &daemon{file: file, lookupEnv: lookupEnv, cfg: cfg, level: new(slog.LevelVar), reg: new(metrics.Registry)}
	d.level.Set(logLevels[cfg.Log.Level])
	d.fdLimit = raiseFileLimit()
	logs := newLogWriter(stderr)
	d.logger = newLogger(cfg.Log.Format, d.level, logs)
	logs.report = func(n uint64) {
		d.logger.Warn("the log output could not keep up; lines were dropped", "dropped", n, "dropped_total", logs.Dropped())
	}
	logCtx, stopLogs := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLogs()
	go logs.run(logCtx)
	now := time.Now()
	d.reloads = registerMetrics(d.reg, d, logs, now)
	d.pm = proxy.NewMetrics(d.reg)

	store, secret, err := openStore(cfg, d.logger)
	if err != nil {
		flushWithin(logs, time.Second)
		return usageError{err}
	}
	if store != nil {
		defer store.Close()
		registerStoreMetrics(d.reg, store)
	}
	var lns *listeners
	err = interruptible(ctx, func() error {
		src, err := loadCertificates(cfg, now, d.logger, store)
		if err != nil {
			return usageError{err}
		}
		d.src = src
		if d.app, err = buildApp(cfg, d.logger, d.pm); err != nil {
			return usageError{err}
		}
		lns, err = listen(cfg.Listen)
		return err
	})
	if err != nil || ctx.Err() != nil {
		if err == nil {
			d.logger.Info("stopped during start-up")
		}
		d.app.close()
		flushWithin(logs, time.Second)
		return err
	}
	defer lns.close()
	defer func() { d.app.close() }()
	for _, w := range keyPermWarnings(cfg) {
		d.logger.Warn(w)
	}
	if set := d.src.set.Load(); set != nil {
		for _, w := range certWarnings(set, d.src.hosts, now) {
			d.logger.Warn(w)
		}
	}
	if d.src.acme != nil && cfg.Listen.HTTP == "" {
		d.logger.Warn("listen.http is off: ACME can validate only through tls-alpn-01 on the HTTPS port")
	}
	d.srv = server.New(d.fullOptions(cfg, lns, logs))
	// Background work ends before the storage is closed (deferred above):
	// an order stops and releases its lock.
	bg, stopBG := context.WithCancel(ctx)
	var background sync.WaitGroup
	defer waitWithin(&background, 5*time.Second)
	defer stopBG()
	if secret != nil {
		tickets, err := d.startTickets(ctx, store, secret, cfg.TLS.SessionTickets)
		if err != nil {
			return usageError{err}
		}
		background.Go(func() { tickets.Run(bg) })
	}
	if store != nil {
		background.Go(func() { store.Run(bg, storePing) })
	}
	var admin *server.Admin
	errc := make(chan error, 4)
	go func() { errc <- d.srv.ServeTLS(lns.https) }()
	if lns.h3 != nil {
		go func() { errc <- d.srv.ServeQUIC(lns.h3) }()
	}
	if lns.http != nil {
		go func() { errc <- d.srv.ServeRedirect(lns.http) }()
	}
	if lns.admin != nil {
		admin = server.NewAdmin(server.AdminOptions{Metrics: d.reg, Ready: d.ready, Live: d.srv.Probe,
			Warnings: func() []string { return storageWarnings(store) },
			Pprof:    cfg.Listen.AdminPprof, Public: cfg.Listen.AdminPublic, Addr: cfg.Listen.Admin, Logger: d.logger})
		go func() { errc <- admin.Serve(lns.admin) }()
	}
	d.mu.Lock()
	d.up = true
	d.mu.Unlock()
	d.logStart(lns)
	if d.src.acme != nil {
		background.Go(func() { d.src.acme.Run(bg) })
	}
	if d.src.files != nil {
		background.Go(func() { d.src.files.Run(bg, cfg.TLS.ReloadInterval) })
	}

	serveErr := d.wait(ctx, hup, errc)
	return d.shutdown(ctx, admin, logs, serveErr)
}

// shutdown stops the servers within limits.shutdown_timeout, log output
// included: a stuck log output never holds the process up.
func (d *daemon) shutdown(ctx context.Context, admin *server.Admin, logs *logWriter, serveErr error) error {
	d.mu.Lock()
	d.up = false
	timeout := d.cfg.Limits.ShutdownTimeout
	d.mu.Unlock()
	d.logger.Info("shutting down", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if admin != nil {
		go admin.Shutdown(sctx)
	}
	var err error
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = serveErr
	}
	if serr := d.srv.Shutdown(sctx); serr != nil {
		err = errors.Join(err, fmt.Errorf("shutdown: requests still running after %v were cut off: %w", timeout, serr))
	}
	if err == nil {
		d.logger.Info("stopped")
	}
	// The log gets what is left of the shutdown time, at most finalFlush:
	// an output stuck for good must not hold the process.
	if dl, _ := sctx.Deadline(); time.Until(dl) > finalFlush {
		flushWithin(logs, finalFlush)
	} else {
		flushWithin(logs, max(time.Until(dl), 100*time.Millisecond))
	}
	return err
}

// fullOptions is every server.Option serve sets at start.
func (d *daemon) fullOptions(cfg *Config, lns *listeners, logs *logWriter) server.Options {
	httpsPort := lns.https.Addr().(*net.TCPAddr).Port
	if cfg.Listen.PublicHTTPSPort != 0 {
		httpsPort = cfg.Listen.PublicHTTPSPort
	}
	opts := d.serverOptions(cfg, d.src.hosts)
	opts.GetCertificate = d.src.GetCertificate
	opts.MinVersion = tlsVersions[cfg.TLS.MinVersion]
	opts.HTTPSPort = httpsPort
	opts.EarlyData = cfg.TLS.EarlyData
	opts.Logger = d.logger
	opts.AccessLogWriter, opts.AccessLogJSON, opts.AccessLogLevel = logs, cfg.Log.Format == "json", d.level
	opts.Metrics = d.reg
	opts.ProxyProtocolFrom = trustedPrefixes(cfg.Listen.ProxyProtocolFrom)
	if d.src.acme != nil {
		opts.ExtraALPN = []string{acme.ALPNProto}
		if lns.http != nil { // else autocert would offer http-01, which cannot work
			opts.WrapRedirect = d.src.acme.HTTPHandler
		}
	}
	return opts
}

// interruptible runs f, returning early (with nil) when ctx is done first:
// start-up must stop at SIGINT or SIGTERM whatever it is waiting on.
func interruptible(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return nil
	}
}

// waitWithin waits for wg, at most d: autocert's own orders (without
// tls.acme.storage) cannot be stopped and may run for minutes.
func waitWithin(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// finalFlush bounds how long shutdown waits for the log output.
const finalFlush = 2 * time.Second

// flushWithin waits up to d for the log to be written out.
func flushWithin(logs *logWriter, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	logs.Flush(ctx)
}

// wait blocks until ctx is done or a listener fails, re-reading the config
// on every SIGHUP meanwhile.
func (d *daemon) wait(ctx context.Context, hup <-chan os.Signal, errc <-chan error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			d.logger.Error("listener failed", "err", err)
			return err
		case <-hup:
			d.reload()
		}
	}
}

// listeners are the sockets serve opened; http, admin and h3 may be nil.
type listeners struct {
	https, http, admin net.Listener
	h3                 net.PacketConn // HTTP/3 over QUIC, on the HTTPS address and port
}

// listen opens every configured listener, naming the key and address of
// the one that fails.
func listen(c ListenConfig) (*listeners, error) {
	lns := &listeners{}
	for _, l := range []struct {
		key, addr string
		dst       *net.Listener
	}{{"listen.https", c.HTTPS, &lns.https}, {"listen.http", c.HTTP, &lns.http}, {"listen.admin", c.Admin, &lns.admin}} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			lns.close()
			return nil, fmt.Errorf("%s %s: %w", l.key, l.addr, err)
		}
		*l.dst = ln
	}
	if c.HTTP3 {
		if err := lns.listenH3(c.HTTPS); err != nil {
			lns.close()
			return nil, err
		}
	}
	return lns, nil
}

func (l *listeners) close() {
	for _, ln := range []net.Listener{l.https, l.http, l.admin} {
		if ln != nil {
			ln.Close()
		}
	}
	if l.h3 != nil {
		l.h3.Close()
	}
}

func (d *daemon) logStart(lns *listeners) {
	addr := func(l net.Listener) string {
		if l == nil {
			return "off"
		}
		return l.Addr().String()
	}
	h3 := "off"
	if lns.h3 != nil {
		h3 = lns.h3.LocalAddr().String()
	}
	attrs := []any{"version", version, "https", addr(lns.https), "http3", h3, "http", addr(lns.http), "admin", addr(lns.admin),
		"source", d.cfg.TLS.Source, "hosts", strings.Join(d.src.hosts, ","),
		"max_conns", maxConns(d.cfg.Limits.MaxConns, d.fdLimit), "fd_limit", d.fdLimit}
	if d.cfg.TLS.Source == sourceSelfSigned {
		attrs = append(attrs, "try", tryCommand(d.cfg.DataDir, d.src.hosts, lns.https.Addr()))
	}
	d.logger.Info("httpsd serving", attrs...)
	if c := d.cfg.Limits.MaxConns; c > 0 && maxConns(c, d.fdLimit) < c {
		d.logger.Warn("limits.max_conns is more than the open file limit allows; lowered", "max_conns", c,
			"fd_limit", d.fdLimit, "lowered_to", maxConns(c, d.fdLimit), "fix", "raise the limit (LimitNOFILE=, ulimit -n) or lower limits.max_conns")
	}
}

// ready is the admin /readyz check: listeners up and a valid certificate
// covering every host.
func (d *daemon) ready() error {
	d.mu.Lock()
	up, hosts := d.up, d.src.hosts
	d.mu.Unlock()
	if !up {
		return errors.New("listeners not serving")
	}
	return d.src.ready(hosts, time.Now())
}

// serverOptions is the part of server.Options that a reload may change.
func (d *daemon) serverOptions(cfg *Config, hosts []string) server.Options {
	l := cfg.Limits
	return server.Options{
		Handler:        d.app.handler(),
		TrustedProxies: trustedPrefixes(cfg.TrustedProxies),
		Hosts:          hosts,
		HSTSMaxAge:     hstsMaxAge(cfg.TLS),
		AccessLog:      cfg.Log.Access,
		Limits: server.Limits{
			ReadHeaderTimeout: l.ReadHeaderTimeout,
			ReadTimeout:       l.ReadTimeout,
			WriteTimeout:      l.WriteTimeout,
			IdleTimeout:       l.IdleTimeout,
			MaxHeaderBytes:    l.MaxHeaderBytes,
			SendTimeout:       l.SendTimeout,
			MaxConcurrent:     l.MaxConcurrentRequests,
			MaxRequestsPerIP:  l.MaxRequestsPerIP,
			QueueTimeout:      l.QueueTimeout,
			RatePerIP:         l.RatePerIP,
			BurstPerIP:        l.BurstPerIP,
			MaxConnsPerIP:     l.MaxConnsPerIP,
			MaxConns:          maxConns(l.MaxConns, d.fdLimit),
			MaxBodyBytes:      l.MaxBodyBytes,
		},
	}
}

// maxConns is limits.max_conns, or when that is 0 (or more than the file
// limit allows) a cap derived from the open file limit: what is left after
// a reserve for the admin listener, ACME, certificate and log files (64
// and an eighth). Where there is no limit to derive it from, the
// configured value (0: none).
func maxConns(configured int, fdLimit uint64) int {
	if fdLimit == 0 {
		return configured
	}
	reserve := 64 + fdLimit/8
	derived := 16
	if fdLimit > reserve+16 {
		derived = int(min(fdLimit-reserve, 10_000_000))
	}
	if configured > 0 && configured < derived {
		return configured
	}
	return derived // a configured value above what the file limit allows is lowered (logged at start)
}

// hstsMaxAge applies the source's default to tls.hsts_max_age: two years
// for real certificates, off for the local CA, which browsers do not trust.
func hstsMaxAge(t TLSConfig) time.Duration {
	switch {
	case t.HSTSMaxAge < 0:
		return 0
	case t.HSTSMaxAge > 0:
		return t.HSTSMaxAge
	case t.Source == sourceSelfSigned:
		return 0
	}
	return 730 * 24 * time.Hour
}

// tryCommand is a curl command line that works against this server.
func tryCommand(dataDir string, hosts []string, addr net.Addr) string {
	host := "localhost"
	if len(hosts) > 0 && !contains(hosts, host) {
		host = hosts[0]
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := addr.(*net.TCPAddr).Port
	hostport := host
	if port != 443 {
		hostport += ":" + strconv.Itoa(port)
	}
	ca := filepath.Join(dataDir, certs.CACertFile)
	return fmt.Sprintf("curl --cacert %s https://%s/hello/world", ca, hostport)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func newLogger(format string, level slog.Leveler, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
}
