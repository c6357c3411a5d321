package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// field is one scalar or string-list key that both config.yaml and the
// environment can set.
type field struct {
	key       string
	isPath    bool                 // relative values are resolved against the config file
	setString func(string) error   // a scalar, or a comma-separated list
	setList   func([]string) error // lists only
	// alias is a section name that also takes this key's value, as a
	// shorthand (tls.acme.storage: URL for tls.acme.storage.url), in the
	// file and as HTTPSD_ + the alias in the environment.
	alias string
	// envOnly keys (secrets) are refused in the file.
	envOnly bool
}

// fields lists every key settable from both the file and the environment.
func (c *Config) fields() []field {
	return []field{
		listField("hosts", &c.Hosts),
		listField("trusted_proxies", &c.TrustedProxies),
		stringField("listen.https", &c.Listen.HTTPS),
		stringField("listen.http", &c.Listen.HTTP),
		boolField("listen.http3", &c.Listen.HTTP3),
		intField("listen.public_https_port", &c.Listen.PublicHTTPSPort),
		stringField("listen.admin", &c.Listen.Admin),
		boolField("listen.admin_public", &c.Listen.AdminPublic),
		boolField("listen.admin_pprof", &c.Listen.AdminPprof),
		listField("listen.proxy_protocol_from", &c.Listen.ProxyProtocolFrom),
		pathField("data_dir", &c.DataDir),
		stringField("tls.source", &c.TLS.Source),
		stringField("tls.min_version", &c.TLS.MinVersion),
		durationField("tls.hsts_max_age", &c.TLS.HSTSMaxAge),
		boolField("tls.early_data", &c.TLS.EarlyData),
		durationField("tls.reload_interval", &c.TLS.ReloadInterval),
		stringField("tls.acme.email", &c.TLS.ACME.Email),
		stringField("tls.acme.directory", &c.TLS.ACME.Directory),
		pathField("tls.acme.ca_roots", &c.TLS.ACME.CARoots),
		durationField("tls.acme.renew_before", &c.TLS.ACME.RenewBefore),
		stringField("tls.acme.eab.kid", &c.TLS.ACME.EAB.KID),
		stringField("tls.acme.eab.hmac_key", &c.TLS.ACME.EAB.HMACKey),
		aliasField("tls.acme.storage", stringField("tls.acme.storage.url", &c.TLS.ACME.Storage.URL)),
		envOnlyField(stringField("tls.acme.storage.password", &c.TLS.ACME.Storage.Password)),
		pathField("tls.acme.storage.password_file", &c.TLS.ACME.Storage.PasswordFile),
		stringField("tls.acme.storage.key_prefix", &c.TLS.ACME.Storage.KeyPrefix),
		pathField("tls.acme.storage.ca_roots", &c.TLS.ACME.Storage.CARoots),
		durationField("tls.acme.storage.lock_ttl", &c.TLS.ACME.Storage.LockTTL),
		boolField("tls.session_tickets.shared", &c.TLS.SessionTickets.Shared),
		durationField("tls.session_tickets.rotate", &c.TLS.SessionTickets.Rotate),
		durationField("tls.session_tickets.keep", &c.TLS.SessionTickets.Keep),
		durationField("limits.read_header_timeout", &c.Limits.ReadHeaderTimeout),
		durationField("limits.read_timeout", &c.Limits.ReadTimeout),
		durationField("limits.write_timeout", &c.Limits.WriteTimeout),
		durationField("limits.idle_timeout", &c.Limits.IdleTimeout),
		intField("limits.max_header_bytes", &c.Limits.MaxHeaderBytes),
		durationField("limits.shutdown_timeout", &c.Limits.ShutdownTimeout),
		durationField("limits.send_timeout", &c.Limits.SendTimeout),
		intField("limits.max_concurrent_requests", &c.Limits.MaxConcurrentRequests),
		intField("limits.max_requests_per_ip", &c.Limits.MaxRequestsPerIP),
		durationField("limits.queue_timeout", &c.Limits.QueueTimeout),
		floatField("limits.rate_per_ip", &c.Limits.RatePerIP),
		intField("limits.burst_per_ip", &c.Limits.BurstPerIP),
		intField("limits.max_conns", &c.Limits.MaxConns),
		intField("limits.max_conns_per_ip", &c.Limits.MaxConnsPerIP),
		int64Field("limits.max_body_bytes", &c.Limits.MaxBodyBytes),
		stringField("log.level", &c.Log.Level),
		stringField("log.format", &c.Log.Format),
		boolField("log.access", &c.Log.Access),
		envOnlyField(stringField("cluster.secret", &c.Cluster.Secret)),
		pathField("cluster.secret_file", &c.Cluster.SecretFile),
	}
}

// sections are the keys whose values are mappings of further keys.
var sections = map[string]bool{"listen": true, "tls": true, "tls.acme": true, "tls.acme.eab": true, "tls.acme.storage": true,
	"tls.session_tickets": true, "limits": true, "log": true, "cluster": true}

func aliasField(alias string, f field) field {
	f.alias = alias
	return f
}

func envOnlyField(f field) field {
	f.envOnly = true
	return f
}

func stringField(key string, p *string) field {
	return field{key: key, setString: func(s string) error { *p = s; return nil }}
}

func pathField(key string, p *string) field {
	f := stringField(key, p)
	f.isPath = true
	return f
}

func intField(key string, p *int) field {
	return field{key: key, setString: func(s string) error {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		*p = n
		return nil
	}}
}

func int64Field(key string, p *int64) field {
	return field{key: key, setString: func(s string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", s)
		}
		*p = n
		return nil
	}}
}

func floatField(key string, p *float64) field {
	return field{key: key, setString: func(s string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("not a number: %q", s)
		}
		*p = f
		return nil
	}}
}

func boolField(key string, p *bool) field {
	return field{key: key, setString: func(s string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not a boolean (true or false): %q", s)
		}
		*p = b
		return nil
	}}
}

func durationField(key string, p *time.Duration) field {
	return field{key: key, setString: func(s string) error {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not a duration such as 30s, 5m or 1h: %q", s)
		}
		*p = d
		return nil
	}}
}

func listField(key string, p *[]string) field {
	set := func(items []string) error { *p = items; return nil }
	return field{key: key, setList: set, setString: func(s string) error {
		var items []string
		for _, it := range strings.Split(s, ",") {
			if it = strings.TrimSpace(it); it != "" {
				items = append(items, it)
			}
		}
		return set(items)
	}}
}

// decoder walks a YAML document, setting fields and collecting errors.
type decoder struct {
	c      *Config
	file   string
	fields []field
	errs   []error
}

func (d *decoder) failf(n *yaml.Node, key, format string, args ...any) {
	d.errs = append(d.errs, fmt.Errorf("%s:%d: %s: %s", d.file, n.Line, key, fmt.Sprintf(format, args...)))
}

func (d *decoder) field(key string) *field {
	for i := range d.fields {
		if d.fields[i].key == key {
			return &d.fields[i]
		}
	}
	return nil
}

// shorthand returns the field whose alias is key when v is a single
// value, else nil.
func (d *decoder) shorthand(key string, v *yaml.Node) *field {
	v = resolveAlias(v)
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return nil
	}
	for i := range d.fields {
		if d.fields[i].alias == key {
			return &d.fields[i]
		}
	}
	return nil
}

// mapping decodes the keys of n, a mapping, each prefixed with prefix.
func (d *decoder) mapping(prefix string, n *yaml.Node) {
	n = resolveAlias(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		key := strings.TrimSuffix(prefix, ".")
		if key == "" {
			d.errs = append(d.errs, fmt.Errorf("%s:%d: expected a mapping of keys, got %s", d.file, n.Line, describeNode(n)))
			return
		}
		d.failf(n, key, "expected a mapping of keys, got %s", describeNode(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := prefix + k.Value
		if prefix == "" && strings.HasPrefix(k.Value, "x-") {
			continue // extension keys, e.g. to hold YAML anchors, as in Compose files
		}
		if k.Value == "<<" {
			d.failf(k, strings.TrimSuffix(prefix, "."), "YAML merge keys (<<) are not supported; write the keys out")
			continue
		}
		if line, dup := seen[key]; dup {
			d.failf(k, key, "duplicate key (first set on line %d)", line)
			continue
		}
		seen[key] = k.Line
		d.c.origin[key] = fmt.Sprintf("%s:%d", d.file, k.Line)
		switch f := d.shorthand(key, v); {
		case f != nil:
			d.c.origin[f.key] = d.c.origin[key]
			d.value(f, v, k.Line)
		case sections[key]:
			d.mapping(key+".", v)
		case key == "tls.certificates":
			d.certificates(key, v)
		case key == "routes":
			d.routes(key, v)
		default:
			f := d.field(key)
			if f == nil {
				d.failf(k, key, "unknown key")
				continue
			}
			if f.envOnly {
				d.failf(k, key, "a secret is not read from the config file; set %s, or the %s_file key", envName(key), key)
				continue
			}
			d.value(f, v, k.Line)
		}
	}
}

// value sets one field from a scalar or a sequence of scalars; errors
// name line, the key's (the value may be an alias of a node elsewhere).
func (d *decoder) value(f *field, n *yaml.Node, line int) {
	n = resolveAlias(n)
	at := &yaml.Node{Line: line}
	if f.setList != nil {
		d.list(f, n, at)
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.failf(at, f.key, "expected a single value, got %s", describeNode(n))
		return
	}
	v := n.Value
	if n.Tag == "!!null" {
		v = ""
	}
	if f.isPath {
		v = d.c.resolvePath(d.file, v)
	}
	if err := f.setString(v); err != nil {
		d.failf(at, f.key, "%v", err)
	}
}

func (d *decoder) list(f *field, n, at *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		f.setList(nil)
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.failf(at, f.key, "expected a list such as [a.example, b.example], got %s", describeNode(n))
		return
	}
	items := make([]string, 0, len(n.Content))
	for _, it := range n.Content {
		it = resolveAlias(it)
		if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
			d.failf(at, f.key, "expected a list of strings, got %s in it", describeNode(it))
			return
		}
		items = append(items, it.Value)
	}
	f.setList(items)
}

// certificates decodes tls.certificates, a list of {cert, key} mappings.
func (d *decoder) certificates(key string, n *yaml.Node) {
	n = resolveAlias(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.failf(n, key, "expected a list of {cert: FILE, key: FILE}, got %s", describeNode(n))
		return
	}
	d.c.TLS.Certificates = nil
	for i, item := range n.Content {
		item = resolveAlias(item)
		ikey := fmt.Sprintf("%s[%d]", key, i)
		d.c.origin[ikey] = fmt.Sprintf("%s:%d", d.file, item.Line)
		if item.Kind != yaml.MappingNode {
			d.failf(item, ikey, "expected {cert: FILE, key: FILE}, got %s", describeNode(item))
			continue
		}
		var pair CertFiles
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], resolveAlias(item.Content[j+1])
			var dst *string
			switch k.Value {
			case "cert":
				dst = &pair.Cert
			case "key":
				dst = &pair.Key
			default:
				d.failf(k, ikey+"."+k.Value, "unknown key (want cert and key)")
				continue
			}
			if v.Kind != yaml.ScalarNode {
				d.failf(k, ikey+"."+k.Value, "expected a file name, got %s", describeNode(v))
				continue
			}
			if v.Tag != "!!null" {
				*dst = d.c.resolvePath(d.file, v.Value)
			}
		}
		d.c.TLS.Certificates = append(d.c.TLS.Certificates, pair)
	}
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}
