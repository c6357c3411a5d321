package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/httpsd/httpsd/proxy"
	"github.com/httpsd/httpsd/server"
)

// validateRoutes checks every routes: entry, and that they can be served
// side by side.
func (c *Config) validateRoutes() []error {
	var errs []error
	var table []int // the routes fit for the table check, by index
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		before := len(errs)
		bad := func(k, format string, args ...any) {
			errs = append(errs, c.errorAt(key, k, format, args...))
		}
		n := 0
		for _, set := range []bool{r.Hello, r.Proxy != nil, r.Files != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad(key, "needs exactly one handler: hello: {}, proxy: {...} or files: {...}")
		}
		if r.Path == "" {
			bad(key+".path", "missing: a path such as /hello/:name, /static/*file or /*")
		}
		if r.Host != "" && !slices.Contains(c.Hosts, strings.ToLower(strings.TrimSuffix(r.Host, "."))) {
			bad(key+".host", "%q is not one of hosts (%s); list it there (a wildcard route host must be a wildcard in hosts)", r.Host, strings.Join(c.Hosts, ", "))
		}
		if r.Proxy != nil {
			errs = append(errs, c.validateProxy(key, key+".proxy", r.Proxy)...)
		}
		if r.Files != nil && r.Files.Root == "" {
			bad(key+".files.root", "missing: the directory to serve")
		}
		if len(errs) == before && r.Path != "" {
			table = append(table, i)
		}
	}
	// The table as a whole: duplicates, conflicts, reserved paths.
	placeholder := http.NotFoundHandler()
	routes := make([]server.Route, len(table))
	for j, i := range table {
		routes[j] = server.Route{Host: c.Routes[i].Host, Path: c.Routes[i].Path, Handler: placeholder}
	}
	if _, err := server.NewRouter(routes); err != nil {
		var re *server.RouteError
		if !errors.As(err, &re) {
			return append(errs, err)
		}
		key := fmt.Sprintf("routes[%d]", table[re.Index])
		msg := re.Msg
		if re.Other >= 0 {
			other := fmt.Sprintf("routes[%d]", table[re.Other])
			msg += fmt.Sprintf(" (%s, %s)", other, c.origin[other])
		}
		errs = append(errs, c.errorAt(key, key+".path", "%s", msg))
	}
	return errs
}

func (c *Config) validateProxy(route, key string, p *ProxyConfig) []error {
	var errs []error
	bad := func(k, format string, args ...any) {
		errs = append(errs, c.errorAt(route, key+"."+k, format, args...))
	}
	if len(p.Upstreams) == 0 {
		bad("upstreams", "needs at least one upstream, such as http://127.0.0.1:8000 or unix:/run/app.sock")
	}
	for _, u := range p.Upstreams {
		if err := proxy.CheckUpstream(u); err != nil {
			bad("upstreams", "%v", strings.TrimPrefix(err.Error(), "proxy: "))
		}
	}
	if p.LB != "round_robin" && p.LB != "least_conn" {
		bad("lb", "must be round_robin or least_conn; got %q", p.LB)
	}
	if p.MaxIdleConns < 1 || p.MaxIdleConns > 10000 {
		bad("max_idle_conns", "must be from 1 to 10000; got %d", p.MaxIdleConns)
	}
	if p.MaxFails < 1 || p.MaxFails > 1000 {
		bad("max_fails", "must be from 1 to 1000; got %d", p.MaxFails)
	}
	for _, d := range []struct {
		k        string
		v        time.Duration
		min, max time.Duration
	}{
		{"dial_timeout", p.DialTimeout, 100 * time.Millisecond, time.Minute},
		{"fail_timeout", p.FailTimeout, time.Second, time.Hour},
		{"response_header_timeout", p.ResponseHeaderTimeout, time.Second, 24 * time.Hour},
		{"health.interval", p.HealthInterval, time.Second, time.Hour},
	} {
		if d.v < d.min || d.v > d.max {
			bad(d.k, "must be from %s to %s; got %s", fmtDuration(d.min), fmtDuration(d.max), fmtDuration(d.v))
		}
	}
	if f := p.FlushInterval; f != -1 && (f < 0 || f > time.Minute) {
		bad("flush_interval", "must be -1 (flush every write), 0 (as the response needs) or up to 1m; got %s", fmtDuration(f))
	}
	if p.HealthPath != "" && !strings.HasPrefix(p.HealthPath, "/") {
		bad("health.path", "must start with /; got %q", p.HealthPath)
	}
	return errs
}

// errorAt is errorf for a key inside a list entry: the position is the
// key's own when it was set, else the entry's.
func (c *Config) errorAt(entry, key, format string, args ...any) error {
	if c.origin[key] == "" && c.origin[entry] != "" {
		return fmt.Errorf("%s: %s: %s", c.origin[entry], key, fmt.Sprintf(format, args...))
	}
	return c.errorf(key, format, args...)
}

// parsePrefix reads a CIDR, or an address as a prefix of its own.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
