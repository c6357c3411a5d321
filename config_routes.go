package main

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// RouteConfig is one routes: entry: a host and path pattern and exactly
// one handler.
type RouteConfig struct {
	Host  string
	Path  string
	Hello bool         // hello: {} — the built-in Bottle-compatible handler
	Proxy *ProxyConfig // proxy: {...}
	Files *FilesConfig // files: {...}
}

// ProxyConfig is a route's proxy: section.
type ProxyConfig struct {
	Upstreams             []string
	LB                    string
	MaxIdleConns          int
	DialTimeout           time.Duration
	FailTimeout           time.Duration
	MaxFails              int
	ResponseHeaderTimeout time.Duration
	FlushInterval         time.Duration // 0 = as net/http's ReverseProxy; -1 = every write
	HostHeader            string
	HealthPath            string
	HealthInterval        time.Duration
}

// FilesConfig is a route's files: section.
type FilesConfig struct {
	Root         string
	Browse       bool
	CacheControl string
}

// Defaults of a proxy: section.
func defaultProxy() *ProxyConfig {
	return &ProxyConfig{LB: "round_robin", MaxIdleConns: 32, DialTimeout: 5 * time.Second, FailTimeout: 10 * time.Second, MaxFails: 3,
		ResponseHeaderTimeout: 60 * time.Second, HealthInterval: 5 * time.Second}
}

// routes decodes the routes: list.
func (d *decoder) routes(key string, n *yaml.Node) {
	n = resolveAlias(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.failf(n, key, "expected a list of {host, path, and one of hello, proxy, files}, got %s", describeNode(n))
		return
	}
	d.c.Routes = nil
	for i, item := range n.Content {
		ikey := fmt.Sprintf("%s[%d]", key, i)
		d.c.origin[ikey] = fmt.Sprintf("%s:%d", d.file, resolveAlias(item).Line)
		var r RouteConfig
		d.object(ikey, item, []field{
			stringField(ikey+".host", &r.Host),
			stringField(ikey+".path", &r.Path),
		}, map[string]func(string, *yaml.Node){
			"hello": func(k string, v *yaml.Node) {
				r.Hello = true
				d.object(k, v, nil, nil)
			},
			"proxy": func(k string, v *yaml.Node) {
				r.Proxy = defaultProxy()
				d.proxy(k, v, r.Proxy)
			},
			"files": func(k string, v *yaml.Node) {
				r.Files = &FilesConfig{}
				d.object(k, v, []field{
					pathField(k+".root", &r.Files.Root),
					boolField(k+".browse", &r.Files.Browse),
					stringField(k+".cache_control", &r.Files.CacheControl),
				}, nil)
			},
		})
		d.c.Routes = append(d.c.Routes, r)
	}
}

func (d *decoder) proxy(key string, n *yaml.Node, p *ProxyConfig) {
	d.object(key, n, []field{
		listField(key+".upstreams", &p.Upstreams),
		stringField(key+".lb", &p.LB),
		intField(key+".max_idle_conns", &p.MaxIdleConns),
		durationField(key+".dial_timeout", &p.DialTimeout),
		durationField(key+".fail_timeout", &p.FailTimeout),
		intField(key+".max_fails", &p.MaxFails),
		durationField(key+".response_header_timeout", &p.ResponseHeaderTimeout),
		flushField(key+".flush_interval", &p.FlushInterval),
		stringField(key+".host_header", &p.HostHeader),
	}, map[string]func(string, *yaml.Node){
		"health": func(k string, v *yaml.Node) {
			d.object(k, v, []field{
				stringField(k+".path", &p.HealthPath),
				durationField(k+".interval", &p.HealthInterval),
			}, nil)
		},
	})
}

// flushField is a duration that may also be -1 (flush after every write).
func flushField(key string, p *time.Duration) field {
	f := durationField(key, p)
	set := f.setString
	f.setString = func(s string) error {
		if s == "-1" {
			*p = -1
			return nil
		}
		return set(s)
	}
	return f
}

// object decodes a mapping under key whose keys are fields or, through
// nested, mappings of their own; unknown and repeated keys are errors.
func (d *decoder) object(key string, n *yaml.Node, fields []field, nested map[string]func(string, *yaml.Node)) {
	n = resolveAlias(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.failf(n, key, "expected a mapping of keys, got %s", describeNode(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := key + "." + k.Value
		if line, dup := seen[k.Value]; dup {
			d.failf(k, sub, "duplicate key (first set on line %d)", line)
			continue
		}
		seen[k.Value] = k.Line
		d.c.origin[sub] = fmt.Sprintf("%s:%d", d.file, k.Line)
		if f, ok := nested[k.Value]; ok {
			f(sub, v)
			continue
		}
		found := false
		for j := range fields {
			if fields[j].key == sub {
				d.value(&fields[j], v, k.Line)
				found = true
			}
		}
		if !found {
			d.failf(k, sub, "unknown key")
		}
	}
}
