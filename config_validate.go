package main

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// validate reports every invalid value, each naming its key.
func (c *Config) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, c.errorf(key, format, args...))
	}
	for i, h := range c.Hosts {
		if err := checkHost(h); err != nil {
			bad("hosts", "entry %d: %v", i+1, err)
		}
	}
	if err := checkAddr(c.Listen.HTTPS); err != nil {
		bad("listen.https", "%v", err)
	}
	if c.Listen.HTTP != "" {
		if err := checkAddr(c.Listen.HTTP); err != nil {
			bad("listen.http", "%v", err)
		}
	}
	if c.Listen.Admin != "" {
		if err := checkAddr(c.Listen.Admin); err != nil {
			bad("listen.admin", "%v", err)
		} else if !c.Listen.AdminPublic && !isLoopback(c.Listen.Admin) {
			bad("listen.admin", "%q is not a loopback address; the admin listener serves metrics (and pprof) without authentication: use 127.0.0.1:PORT, or set listen.admin_public: true", c.Listen.Admin)
		}
	}
	if p := c.Listen.PublicHTTPSPort; p < 0 || p > 65535 {
		bad("listen.public_https_port", "must be a port from 1 to 65535, or 0 for the port of listen.https; got %d", p)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	switch c.TLS.Source {
	case sourceSelfSigned:
	case sourceFiles:
		if len(c.TLS.Certificates) == 0 {
			bad("tls.source", "files needs at least one tls.certificates entry {cert: FILE, key: FILE}")
		}
		for i, p := range c.TLS.Certificates {
			key := fmt.Sprintf("tls.certificates[%d]", i)
			if p.Cert == "" || p.Key == "" {
				bad(key, "needs both cert and key")
			}
		}
	case sourceACME:
		errs = append(errs, c.validateACME()...)
	default:
		bad("tls.source", "must be one of self-signed, files, acme; got %q", c.TLS.Source)
	}
	if _, ok := tlsVersions[c.TLS.MinVersion]; !ok {
		bad("tls.min_version", `must be "1.2" or "1.3"; got %q`, c.TLS.MinVersion)
	}
	errs = append(errs, c.validateRanges()...)
	errs = append(errs, c.validateRoutes()...)
	for i, tp := range c.TrustedProxies {
		if _, err := parsePrefix(tp); err != nil {
			bad("trusted_proxies", "entry %d: %q is not an address or CIDR such as 10.0.0.0/8", i+1, tp)
		}
	}
	if n := c.Limits.MaxHeaderBytes; n < 1024 || n > 1<<20 {
		bad("limits.max_header_bytes", "must be from 1024 to 1048576; got %d", n)
	}
	if _, ok := logLevels[c.Log.Level]; !ok {
		bad("log.level", "must be one of debug, info, warn, error; got %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "must be text or json; got %q", c.Log.Format)
	}
	return errs
}

// validateRanges checks that every duration and number is within a range
// that works: a reload interval of 1ns would have the watcher burn a core,
// a cap of 10^12 would allocate it, a rate of 10^-9 would keep every
// client's bucket for years.
func (c *Config) validateRanges() []error {
	var errs []error
	l := c.Limits
	for _, d := range []struct {
		key      string
		v        time.Duration
		min, max time.Duration
		zeroOff  bool // 0 turns it off, below min
	}{
		{"tls.reload_interval", c.TLS.ReloadInterval, time.Second, 24 * time.Hour, false},
		{"limits.read_header_timeout", l.ReadHeaderTimeout, 100 * time.Millisecond, time.Hour, false},
		{"limits.read_timeout", l.ReadTimeout, 100 * time.Millisecond, 24 * time.Hour, false},
		{"limits.write_timeout", l.WriteTimeout, 100 * time.Millisecond, 24 * time.Hour, false},
		{"limits.send_timeout", l.SendTimeout, time.Second, time.Hour, true},
		{"limits.idle_timeout", l.IdleTimeout, time.Second, 24 * time.Hour, false},
		{"limits.shutdown_timeout", l.ShutdownTimeout, 0, time.Hour, true},
		{"limits.queue_timeout", l.QueueTimeout, 0, time.Minute, true},
	} {
		switch {
		case d.zeroOff && d.v == 0:
		case d.v < d.min || d.v > d.max:
			what := "must be from " + fmtDuration(d.min) + " to " + fmtDuration(d.max)
			if d.zeroOff && d.min > 0 {
				what += ", or 0 to turn it off"
			}
			errs = append(errs, c.errorf(d.key, "%s; got %s", what, fmtDuration(d.v)))
		}
	}
	if h := c.TLS.HSTSMaxAge; h > 0 && h < time.Second {
		errs = append(errs, c.errorf("tls.hsts_max_age", "must be at least 1s (it is sent in seconds), 0 for the default or negative for off; got %v", h))
	}
	if c.TLS.ACME.RenewBefore < 0 {
		errs = append(errs, c.errorf("tls.acme.renew_before", "must not be negative"))
	}
	const million = 1_000_000
	for _, n := range []struct {
		key string
		v   int64
		max int64
	}{
		{"limits.max_concurrent_requests", int64(l.MaxConcurrentRequests), million},
		{"limits.max_requests_per_ip", int64(l.MaxRequestsPerIP), million},
		{"limits.burst_per_ip", int64(l.BurstPerIP), million},
		{"limits.max_conns", int64(l.MaxConns), 10 * million},
		{"limits.max_conns_per_ip", int64(l.MaxConnsPerIP), million},
		{"limits.max_body_bytes", l.MaxBodyBytes, 1 << 50},
	} {
		if n.v < 0 || n.v > n.max {
			errs = append(errs, c.errorf(n.key, "must be from 0 (off) to %d; got %d", n.max, n.v))
		}
	}
	if r := l.RatePerIP; r != 0 && (r < 0.001 || r > million) {
		errs = append(errs, c.errorf("limits.rate_per_ip", "must be from 0.001 to %d requests per second, or 0 for off; got %v", million, r))
	}
	return errs
}

// fmtDuration writes d without a trailing "0s" or "0m": 24h, 1m, 100ms.
func fmtDuration(d time.Duration) string {
	s := d.String()
	for _, z := range []string{"m0s", "h0m"} {
		s = strings.Replace(s, z, z[:1], 1)
	}
	return s
}

var tlsVersions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

// checkAddr accepts HOST:PORT with an optional host and a numeric port.
func checkAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("must be HOST:PORT or :PORT, such as :8443; got %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port must be a number from 0 to 65535; got %q", addr)
	}
	if host != "" && strings.ContainsAny(host, " /") {
		return fmt.Errorf("invalid host in %q", addr)
	}
	return nil
}

// checkHost accepts a DNS name, a "*.example.com" wildcard or an IP literal.
func checkHost(h string) error {
	if ip, err := netip.ParseAddr(h); err == nil {
		if ip.Zone() != "" {
			return fmt.Errorf("%q is a zoned address; hosts are matched against Host headers, which carry no zone", h)
		}
		return nil
	}
	name := strings.TrimSuffix(h, ".")
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name = rest
	}
	if name == "" || len(name) > 253 {
		return fmt.Errorf("%q is not a host name", h)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a host name", h)
		}
		for _, ch := range label {
			if !(ch == '-' || '0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z') {
				return fmt.Errorf("%q is not a host name (use the ASCII/punycode form, no ports or paths)", h)
			}
		}
	}
	return nil
}

// validateACME checks the tls.acme section and that hosts are names a
// public CA can issue for.
func (c *Config) validateACME() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, c.errorf(key, format, args...))
	}
	if len(c.Hosts) == 0 {
		bad("tls.source", "acme needs hosts: the DNS names to get certificates for")
	}
	for i, h := range c.Hosts {
		if checkHost(h) != nil {
			continue // reported by validate
		}
		if _, err := netip.ParseAddr(h); err == nil || strings.HasPrefix(h, "*.") || !strings.Contains(h, ".") || strings.HasSuffix(h, ".localhost") {
			bad("hosts", "entry %d: acme needs dotted DNS names, no IP addresses, localhost or wildcards; got %q", i+1, h)
		}
	}
	a := c.TLS.ACME
	if u, err := url.Parse(a.Directory); err != nil || u.Scheme != "https" || u.Host == "" {
		bad("tls.acme.directory", `must be an https:// URL, "letsencrypt" or "letsencrypt-staging"; got %q`, a.Directory)
	}
	if a.Email != "" && (!strings.Contains(a.Email, "@") || strings.ContainsAny(a.Email, " \t,;<>")) {
		bad("tls.acme.email", "not an email address: %q", a.Email)
	}
	switch {
	case (a.EAB.KID == "") != (a.EAB.HMACKey == ""):
		bad("tls.acme.eab", "needs both kid and hmac_key, or neither")
	case a.EAB.HMACKey != "":
		if _, err := decodeBase64URL(a.EAB.HMACKey); err != nil {
			bad("tls.acme.eab.hmac_key", "not base64url: %v", err)
		}
	}
	return errs
}

// decodeBase64URL decodes base64url with or without padding.
func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// isLoopback reports whether addr (HOST:PORT) names a loopback host.
func isLoopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
