package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/httpsd/httpsd/proxy"
	"github.com/httpsd/httpsd/server"
)

// app is the HTTPS handler built from the routes: config, and the
// proxies it runs (their health checks stop with close).
type app struct {
	router  *server.Router // nil without routes: the built-in ones
	proxies []*proxy.Proxy
}

// buildApp makes the routes of cfg ready to serve: it starts a proxy per
// proxy route and checks every files root.
func buildApp(cfg *Config, logger *slog.Logger, pm *proxy.Metrics) (*app, error) {
	a := &app{}
	if len(cfg.Routes) == 0 {
		return a, nil
	}
	trusted := trustedPrefixes(cfg.TrustedProxies)
	routes := make([]server.Route, 0, len(cfg.Routes))
	for i, r := range cfg.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		sr := server.Route{Host: r.Host, Path: r.Path}
		switch {
		case r.Hello:
			sr.Handle = server.Hello()
		case r.Proxy != nil:
			p, err := proxy.New(proxyOptions(r.Proxy, trusted, logger, pm))
			if err != nil {
				a.close()
				return nil, cfg.errorAt(key, key+".proxy", "%v", err)
			}
			a.proxies = append(a.proxies, p)
			sr.Handler, sr.Stream = p, true
		case r.Files != nil:
			h, err := server.Files(server.FilesOptions{Root: r.Files.Root, Browse: r.Files.Browse,
				CacheControl: r.Files.CacheControl, Param: catchAllParam(r.Path)})
			if err != nil {
				a.close()
				return nil, cfg.errorAt(key, key+".files.root", "%v", err)
			}
			sr.Handler, sr.Params, sr.Stream = h, true, true
		}
		routes = append(routes, sr)
	}
	rt, err := server.NewRouter(routes)
	if err != nil {
		a.close()
		return nil, err
	}
	a.router = rt
	return a, nil
}

func proxyOptions(p *ProxyConfig, trusted []netip.Prefix, logger *slog.Logger, pm *proxy.Metrics) proxy.Options {
	return proxy.Options{
		Upstreams:             p.Upstreams,
		LB:                    p.LB,
		MaxIdleConns:          p.MaxIdleConns,
		DialTimeout:           p.DialTimeout,
		FailTimeout:           p.FailTimeout,
		MaxFails:              p.MaxFails,
		HealthPath:            p.HealthPath,
		HealthInterval:        p.HealthInterval,
		ResponseHeaderTimeout: p.ResponseHeaderTimeout,
		HostHeader:            p.HostHeader,
		FlushInterval:         p.FlushInterval,
		TrustedProxies:        trusted,
		Metrics:               pm,
		Logger:                logger,
	}
}

// handler is the server's Handler: nil for the built-in routes.
func (a *app) handler() http.Handler {
	if a == nil || a.router == nil {
		return nil
	}
	return a.router
}

// close stops the proxies' health checks; requests in flight finish.
func (a *app) close() {
	if a == nil {
		return
	}
	for _, p := range a.proxies {
		p.Close()
	}
}

// catchAllParam is the name of a pattern's catch-all parameter: "file"
// for /static/*file, "path" for /*; "" when it has none.
func catchAllParam(path string) string {
	i := strings.LastIndexByte(path, '*')
	if i < 0 {
		return ""
	}
	if name := path[i+1:]; name != "" {
		return name
	}
	return "path"
}

// trustedPrefixes parses trusted_proxies, validated already.
func trustedPrefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}
