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
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/acme"

	"httpsd/certs"
	"httpsd/server"
)

// serve runs the HTTPS and redirect listeners until ctx is cancelled, then
// shuts down gracefully within limits.shutdown_timeout.
func serve(ctx context.Context, cfg *Config, stderr io.Writer) error {
	logger := newLogger(cfg.Log, stderr)
	now := time.Now()
	src, err := loadCertificates(cfg, now, logger)
	if err != nil {
		return usageError{err}
	}
	if src.set != nil {
		for _, w := range certWarnings(src.set, src.hosts, now) {
			logger.Warn(w)
		}
	}
	hosts := src.hosts

	lnTLS, err := net.Listen("tcp", cfg.Listen.HTTPS)
	if err != nil {
		return fmt.Errorf("listen.https %s: %w", cfg.Listen.HTTPS, err)
	}
	defer lnTLS.Close()
	var lnHTTP net.Listener
	if cfg.Listen.HTTP != "" {
		if lnHTTP, err = net.Listen("tcp", cfg.Listen.HTTP); err != nil {
			return fmt.Errorf("listen.http %s: %w", cfg.Listen.HTTP, err)
		}
		defer lnHTTP.Close()
	}
	httpsPort := lnTLS.Addr().(*net.TCPAddr).Port
	if cfg.Listen.PublicHTTPSPort != 0 {
		httpsPort = cfg.Listen.PublicHTTPSPort
	}

	opts := server.Options{
		Hosts:          hosts,
		GetCertificate: src.getCertificate,
		MinVersion:     tlsVersions[cfg.TLS.MinVersion],
		HSTSMaxAge:     hstsMaxAge(cfg.TLS),
		HTTPSPort:      httpsPort,
		AccessLog:      cfg.Log.Access,
		Limits: server.Limits{
			ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
			ReadTimeout:       cfg.Limits.ReadTimeout,
			WriteTimeout:      cfg.Limits.WriteTimeout,
			IdleTimeout:       cfg.Limits.IdleTimeout,
			MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
		},
		Logger: logger,
	}
	if src.acme != nil {
		opts.ExtraALPN = []string{acme.ALPNProto}
		opts.WrapRedirect = src.acme.HTTPHandler
	}
	srv := server.New(opts)
	errc := make(chan error, 2)
	go func() { errc <- srv.ServeTLS(lnTLS) }()
	httpAddr := "off"
	if lnHTTP != nil {
		httpAddr = lnHTTP.Addr().String()
		go func() { errc <- srv.ServeRedirect(lnHTTP) }()
	}
	startAttrs := []any{"version", version, "https", lnTLS.Addr().String(), "http", httpAddr,
		"source", cfg.TLS.Source, "hosts", strings.Join(hosts, ",")}
	if cfg.TLS.Source == sourceSelfSigned {
		startAttrs = append(startAttrs, "try", tryCommand(cfg.DataDir, hosts, lnTLS.Addr()))
	}
	logger.Info("httpsd serving", startAttrs...)
	if src.acme != nil {
		go src.acme.Run(ctx)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var serveErr error
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case serveErr = <-errc:
			logger.Error("listener failed", "err", serveErr)
			running = false
		case <-hup:
			// Until live reload exists, SIGHUP (systemctl reload) must not
			// kill the server, which is its default action.
			logger.Warn("SIGHUP: live reload is not supported yet; restart httpsd to apply changes")
		}
	}
	logger.Info("shutting down", "timeout", cfg.Limits.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Limits.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return errors.Join(serveErr, fmt.Errorf("shutdown: requests still running after %v were cut off: %w", cfg.Limits.ShutdownTimeout, err))
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	logger.Info("stopped")
	return nil
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

func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: logLevels[c.Level]}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
}
