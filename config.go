package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/httpsd/httpsd/certs"
)

// Config is httpsd's configuration: config.yaml, then HTTPSD_* environment
// variables on top. defaultConfig gives every default.
type Config struct {
	Hosts          []string
	TrustedProxies []string // CIDRs or addresses whose X-Forwarded-For is believed
	Routes         []RouteConfig
	Listen         ListenConfig
	DataDir        string
	TLS            TLSConfig
	Limits         LimitsConfig
	Log            LogConfig
	Cluster        ClusterConfig

	// origin maps a key ("tls.source") to where its value came from
	// ("config.yaml:7" or "env HTTPSD_TLS_SOURCE"), for error messages.
	origin map[string]string
}

// ListenConfig holds the listen: section.
type ListenConfig struct {
	HTTPS           string
	HTTP            string // "" turns plain HTTP off
	HTTP3           bool   // HTTP/3 on a UDP socket on the HTTPS address
	PublicHTTPSPort int    // 0 = the port of HTTPS
	Admin           string // metrics, health, pprof; "" turns it off
	AdminPublic     bool   // allow a non-loopback admin address
	AdminPprof      bool   // serve /debug/pprof/ on the admin listener
	// ProxyProtocolFrom are the load balancers (CIDRs or addresses) that
	// send a PROXY protocol header naming the client on every connection.
	ProxyProtocolFrom []string
}

// TLSConfig holds the tls: section.
type TLSConfig struct {
	Source         string
	MinVersion     string
	HSTSMaxAge     time.Duration // 0 = default for the source, < 0 = off
	EarlyData      bool          // TLS 1.3 0-RTT on HTTP/3
	Certificates   []CertFiles
	ReloadInterval time.Duration // how often certificate files are checked for changes
	ACME           ACMEConfig
	SessionTickets TicketsConfig
}

// TicketsConfig holds tls.session_tickets.
type TicketsConfig struct {
	Shared bool          // keys shared through tls.acme.storage; false: each replica makes its own
	Rotate time.Duration // how often a new key is made
	Keep   time.Duration // how long a replaced key still decrypts tickets
}

// ClusterConfig holds the cluster: section, what replicas share besides
// the storage.
type ClusterConfig struct {
	Secret     string // from HTTPSD_CLUSTER_SECRET only: 32 bytes, hex or base64
	SecretFile string // a file holding it
}

// ACMEConfig holds the tls.acme: section.
type ACMEConfig struct {
	Email       string
	Directory   string // a URL, or "letsencrypt" / "letsencrypt-staging"
	CARoots     string // PEM file trusted for the directory's HTTPS
	RenewBefore time.Duration
	EAB         EABConfig
	Storage     StorageConfig
}

// StorageConfig holds tls.acme.storage: the Redis that replicas share
// ACME state (and session-ticket keys) through.
type StorageConfig struct {
	URL          string        // redis:// or rediss://; "" = none, each replica on its own
	Password     string        // from HTTPSD_TLS_ACME_STORAGE_PASSWORD only
	PasswordFile string        // a file holding the password
	KeyPrefix    string        // starts every key
	CARoots      string        // PEM file trusted for rediss://, besides the system roots
	LockTTL      time.Duration // expiry of the order lock, extended while the order runs
}

// EABConfig holds tls.acme.eab: External Account Binding.
type EABConfig struct {
	KID     string
	HMACKey string // base64url
}

// CertFiles is one tls.certificates entry.
type CertFiles struct {
	Cert string
	Key  string
}

// LimitsConfig holds the limits: section.
type LimitsConfig struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	ShutdownTimeout   time.Duration

	SendTimeout time.Duration

	MaxConcurrentRequests int
	MaxRequestsPerIP      int
	QueueTimeout          time.Duration
	RatePerIP             float64
	BurstPerIP            int
	MaxConns              int // 0: derived from the file descriptor limit
	MaxConnsPerIP         int
	MaxBodyBytes          int64
}

// LogConfig holds the log: section.
type LogConfig struct {
	Level  string
	Format string
	Access bool
}

// Certificate sources.
const (
	sourceSelfSigned = "self-signed"
	sourceFiles      = "files"
	sourceACME       = "acme"
)

func defaultConfig() *Config {
	return &Config{
		Listen:  ListenConfig{HTTPS: ":8443", HTTP: ":8080", HTTP3: true, Admin: "127.0.0.1:9090"},
		DataDir: "./data",
		TLS: TLSConfig{Source: sourceSelfSigned, MinVersion: "1.2", ReloadInterval: 5 * time.Second,
			ACME: ACMEConfig{Directory: certs.LetsEncryptURL,
				Storage: StorageConfig{KeyPrefix: "httpsd:", LockTTL: 30 * time.Second}},
			SessionTickets: TicketsConfig{Rotate: 12 * time.Hour, Keep: 48 * time.Hour}},
		Limits: LimitsConfig{
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ShutdownTimeout:   20 * time.Second,
			SendTimeout:       10 * time.Second,

			MaxConcurrentRequests: 1024,
			MaxRequestsPerIP:      100,
			QueueTimeout:          100 * time.Millisecond,
			MaxConnsPerIP:         256,
			MaxBodyBytes:          1 << 20,
		},
		Log:    LogConfig{Level: "info", Format: "text", Access: true},
		origin: map[string]string{},
	}
}

// loadConfig returns the defaults overlaid by file (when not "") and then
// by the environment, validated. Every problem is reported at once, each
// naming where the bad value came from and its key.
func loadConfig(file string, lookupEnv func(string) (string, bool)) (*Config, error) {
	c := defaultConfig()
	var errs []error
	if file != "" {
		data, err := certs.ReadFile(file)
		if err != nil {
			var pe *fs.PathError // name the file, not the package that read it
			if errors.As(err, &pe) {
				err = pe
			}
			return nil, fmt.Errorf("config: %w", err)
		}
		errs = append(errs, c.decodeYAML(file, data)...)
	}
	errs = append(errs, c.applyEnv(lookupEnv)...)
	c.normalize()
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// decodeYAML sets the keys present in data. Unknown keys, wrong types and
// unparsable values are errors naming file, line and key.
func (c *Config) decodeYAML(file string, data []byte) []error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err == io.EOF { // empty file: all defaults
		return nil
	} else if err != nil {
		return []error{fmt.Errorf("%s: %w", file, err)}
	}
	d := decoder{c: c, file: file, fields: c.fields()}
	var next yaml.Node
	if err := dec.Decode(&next); err != io.EOF {
		d.errs = append(d.errs, fmt.Errorf("%s:%d: only one YAML document is allowed", file, next.Line))
	}
	if len(doc.Content) == 0 {
		return d.errs
	}
	d.mapping("", doc.Content[0])
	return d.errs
}

// envName is the environment variable that overrides key.
func envName(key string) string {
	b := []byte("HTTPSD_" + key)
	for i, ch := range b {
		switch {
		case ch == '.':
			b[i] = '_'
		case 'a' <= ch && ch <= 'z':
			b[i] = ch - 'a' + 'A'
		}
	}
	return string(b)
}

// applyEnv sets every key whose HTTPSD_* variable is set, even to "".
func (c *Config) applyEnv(lookupEnv func(string) (string, bool)) []error {
	var errs []error
	for _, f := range c.fields() {
		name := envName(f.key)
		v, ok := lookupEnv(name)
		if !ok && f.alias != "" {
			name = envName(f.alias)
			v, ok = lookupEnv(name)
		}
		if !ok {
			continue
		}
		c.origin[f.key] = "env " + name
		if err := f.setString(v); err != nil {
			errs = append(errs, fmt.Errorf("env %s: %s: %w", name, f.key, err))
		}
	}
	return errs
}

// resolvePath makes relative paths from the config file relative to the
// file's directory; paths from the environment or defaults stay relative
// to the working directory.
func (c *Config) resolvePath(file, p string) string {
	if p == "" || filepath.IsAbs(p) || file == "" {
		return p
	}
	return filepath.Join(filepath.Dir(file), p)
}

// normalize puts values in canonical form: clean paths, host names in
// lower case without a trailing dot, nil for empty lists.
func (c *Config) normalize() {
	if c.DataDir != "" {
		c.DataDir = filepath.Clean(c.DataDir)
	}
	for i, h := range c.Hosts {
		c.Hosts[i] = strings.ToLower(strings.TrimSuffix(h, "."))
	}
	if len(c.Hosts) == 0 {
		c.Hosts = nil
	}
	if len(c.TLS.Certificates) == 0 {
		c.TLS.Certificates = nil
	}
	if len(c.TrustedProxies) == 0 {
		c.TrustedProxies = nil
	}
	if len(c.Listen.ProxyProtocolFrom) == 0 {
		c.Listen.ProxyProtocolFrom = nil
	}
	if len(c.Routes) == 0 {
		c.Routes = nil
	}
	for i := range c.Routes {
		c.Routes[i].Host = strings.ToLower(strings.TrimSuffix(c.Routes[i].Host, "."))
	}
	switch c.TLS.ACME.Directory {
	case "letsencrypt":
		c.TLS.ACME.Directory = certs.LetsEncryptURL
	case "letsencrypt-staging":
		c.TLS.ACME.Directory = certs.LetsEncryptStagingURL
	}
}

// errorf formats a problem with key, prefixed by where its value came from.
func (c *Config) errorf(key, format string, args ...any) error {
	msg := key + ": " + fmt.Sprintf(format, args...)
	if o := c.origin[key]; o != "" {
		msg = o + ": " + msg
	}
	return errors.New(msg)
}
