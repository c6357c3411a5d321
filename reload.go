package main

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/httpsd/httpsd/certs"
)

// reload re-reads the config file (SIGHUP). Hosts, certificate files,
// request limits, HSTS and logging apply to new requests at once; keys
// that need a restart are reported and keep their running values. An
// invalid config changes nothing and logs every problem.
func (d *daemon) reload() {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.cfg
	cfg, err := loadConfig(d.file, d.lookupEnv)
	if err != nil {
		d.reloads.failure.Inc()
		for _, line := range strings.Split(err.Error(), "\n") {
			d.logger.Error("config reload failed; keeping the running config", "problem", line)
		}
		return
	}
	for _, key := range restartKeys(old, cfg) {
		d.logger.Warn("config reload: this change needs a restart; keeping the running value", "key", key)
	}
	if o, n := old.Limits.MaxRequestsPerIP, cfg.Limits.MaxRequestsPerIP; o != n {
		d.logger.Warn("config reload: limits.max_requests_per_ip applies now; the streams per HTTP/2 and HTTP/3 connection it sets keep their running cap until a restart",
			"running", o, "new", n)
	}
	keepRestartOnly(old, cfg)

	fail := func(problem string) {
		d.reloads.failure.Inc()
		d.logger.Error("config reload failed; keeping the running config", "problem", problem)
	}
	next, err := buildApp(cfg, d.logger, d.pm)
	if err != nil {
		fail(err.Error())
		return
	}
	hosts := d.src.hosts
	switch {
	case d.src.files != nil:
		if err := d.src.files.SetPairs(certPairs(cfg.TLS.Certificates), time.Now()); err != nil {
			next.close()
			fail(strings.ReplaceAll(err.Error(), "\n", "; "))
			d.src.files.SetPairs(certPairs(old.TLS.Certificates), time.Now())
			return
		}
		hosts = hostsFor(cfg.Hosts, d.src.set.Load())
	case d.src.acme == nil: // the local CA: a new leaf when the hosts change
		hosts = hostsFor(cfg.Hosts, nil)
		if !reflect.DeepEqual(hosts, d.src.hosts) {
			set, err := certs.LocalCA(cfg.DataDir, hosts, time.Now())
			if err != nil {
				next.close()
				fail(err.Error())
				return
			}
			d.src.set.Store(set)
		}
	}
	d.src.hosts = hosts
	d.level.Set(logLevels[cfg.Log.Level])
	prev := d.app
	d.app = next
	d.srv.Update(d.serverOptions(cfg, hosts))
	prev.close() // requests in flight finish on the old routes and upstreams
	d.cfg = cfg
	d.reloads.success.Inc()
	d.logger.Info("config reloaded", "hosts", strings.Join(hosts, ","))
}

// restartKeys lists the keys whose change needs a restart.
func restartKeys(old, cfg *Config) []string {
	var keys []string
	for _, c := range []struct {
		key      string
		old, new any
	}{
		{"listen.https", old.Listen.HTTPS, cfg.Listen.HTTPS},
		{"listen.http", old.Listen.HTTP, cfg.Listen.HTTP},
		{"listen.http3", old.Listen.HTTP3, cfg.Listen.HTTP3},
		{"listen.public_https_port", old.Listen.PublicHTTPSPort, cfg.Listen.PublicHTTPSPort},
		{"listen.admin", old.Listen.Admin, cfg.Listen.Admin},
		{"listen.admin_public", old.Listen.AdminPublic, cfg.Listen.AdminPublic},
		{"listen.admin_pprof", old.Listen.AdminPprof, cfg.Listen.AdminPprof},
		{"listen.proxy_protocol_from", old.Listen.ProxyProtocolFrom, cfg.Listen.ProxyProtocolFrom},
		{"data_dir", old.DataDir, cfg.DataDir},
		{"tls.source", old.TLS.Source, cfg.TLS.Source},
		{"tls.min_version", old.TLS.MinVersion, cfg.TLS.MinVersion},
		{"tls.early_data", old.TLS.EarlyData, cfg.TLS.EarlyData},
		{"tls.reload_interval", old.TLS.ReloadInterval, cfg.TLS.ReloadInterval},
		{"tls.acme", old.TLS.ACME, cfg.TLS.ACME},
		{"tls.session_tickets", old.TLS.SessionTickets, cfg.TLS.SessionTickets},
		{"cluster", old.Cluster, cfg.Cluster},
		{"limits.read_header_timeout", old.Limits.ReadHeaderTimeout, cfg.Limits.ReadHeaderTimeout},
		{"limits.read_timeout", old.Limits.ReadTimeout, cfg.Limits.ReadTimeout},
		{"limits.write_timeout", old.Limits.WriteTimeout, cfg.Limits.WriteTimeout},
		{"limits.idle_timeout", old.Limits.IdleTimeout, cfg.Limits.IdleTimeout},
		{"limits.max_header_bytes", old.Limits.MaxHeaderBytes, cfg.Limits.MaxHeaderBytes},
		{"log.format", old.Log.Format, cfg.Log.Format},
	} {
		if !reflect.DeepEqual(c.old, c.new) {
			keys = append(keys, fmt.Sprintf("%s (running %v, new %v)", c.key, c.old, c.new))
		}
	}
	if old.TLS.Source == sourceACME && !reflect.DeepEqual(old.Hosts, cfg.Hosts) {
		keys = append(keys, "hosts (with tls.source acme)")
	}
	return keys
}

// keepRestartOnly copies the values that need a restart from old into cfg.
func keepRestartOnly(old, cfg *Config) {
	cfg.Listen = old.Listen
	cfg.DataDir = old.DataDir
	cfg.TLS.Source, cfg.TLS.MinVersion, cfg.TLS.ReloadInterval, cfg.TLS.ACME =
		old.TLS.Source, old.TLS.MinVersion, old.TLS.ReloadInterval, old.TLS.ACME
	cfg.TLS.SessionTickets, cfg.Cluster = old.TLS.SessionTickets, old.Cluster
	cfg.TLS.EarlyData = old.TLS.EarlyData
	cfg.Limits.ReadHeaderTimeout, cfg.Limits.ReadTimeout = old.Limits.ReadHeaderTimeout, old.Limits.ReadTimeout
	cfg.Limits.WriteTimeout, cfg.Limits.IdleTimeout = old.Limits.WriteTimeout, old.Limits.IdleTimeout
	cfg.Limits.MaxHeaderBytes = old.Limits.MaxHeaderBytes // net/http's own cap is sized at start
	cfg.Log.Format = old.Log.Format
	if old.TLS.Source == sourceACME {
		cfg.Hosts = old.Hosts
	}
}
