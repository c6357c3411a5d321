package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env returns a lookupEnv func serving vars.
func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig("", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.normalize()
	if !reflect.DeepEqual(c, want) {
		t.Errorf("loadConfig(no file) = %+v, want %+v", c, want)
	}
	if c.Listen.HTTPS != ":8443" || c.Listen.HTTP != ":8080" || !c.Listen.HTTP3 || c.TLS.EarlyData || c.TLS.Source != "self-signed" ||
		c.Limits.ReadHeaderTimeout != 5*time.Second || c.Limits.MaxHeaderBytes != 16384 || !c.Log.Access {
		t.Errorf("defaults = %+v, not the documented ones", c)
	}
}

func TestConfigFull(t *testing.T) {
	c, err := loadConfig("testdata/full.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Hosts: []string{"example.com", "www.example.com"},
		Listen: ListenConfig{HTTPS: "127.0.0.1:9443", HTTP: "", HTTP3: false, PublicHTTPSPort: 443,
			Admin: "0.0.0.0:9191", AdminPublic: true, AdminPprof: true},
		DataDir: filepath.Join("testdata", "state"),
		TLS: TLSConfig{Source: "files", MinVersion: "1.3", HSTSMaxAge: 24 * time.Hour, EarlyData: true, Certificates: []CertFiles{
			{Cert: filepath.Join("testdata", "certs/example.crt"), Key: "/abs/example.key"},
		}, ReloadInterval: time.Second, ACME: ACMEConfig{Directory: "https://acme-v02.api.letsencrypt.org/directory",
			Storage: StorageConfig{URL: "rediss://redis.example:6380/2", PasswordFile: filepath.Join("testdata", "secrets/redis-password"),
				KeyPrefix: "site-a:", CARoots: filepath.Join("testdata", "redis-ca.pem"), LockTTL: 10 * time.Second}},
			SessionTickets: TicketsConfig{Shared: true, Rotate: 6 * time.Hour, Keep: 24 * time.Hour}},
		Limits: LimitsConfig{ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 15 * time.Second,
			IdleTimeout: time.Minute, MaxHeaderBytes: 8192, ShutdownTimeout: 3 * time.Second, SendTimeout: 4 * time.Second,
			MaxConcurrentRequests: 10, MaxRequestsPerIP: 3, QueueTimeout: time.Second, RatePerIP: 2.5, BurstPerIP: 5,
			MaxConns: 500, MaxConnsPerIP: 8, MaxBodyBytes: 4096},
		Log:     LogConfig{Level: "debug", Format: "json", Access: false},
		Cluster: ClusterConfig{SecretFile: filepath.Join("testdata", "secrets/cluster-secret")},
	}
	c.origin = nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("loadConfig(full.yaml) =\n%+v\nwant\n%+v", c, want)
	}
}

func TestConfigEnv(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		file string
		want func(c *Config) bool
	}{
		{"https", map[string]string{"HTTPSD_LISTEN_HTTPS": ":443"}, "", func(c *Config) bool { return c.Listen.HTTPS == ":443" }},
		{"empty turns http off", map[string]string{"HTTPSD_LISTEN_HTTP": ""}, "", func(c *Config) bool { return c.Listen.HTTP == "" }},
		{"list", map[string]string{"HTTPSD_HOSTS": "a.example, b.example,"}, "", func(c *Config) bool {
			return reflect.DeepEqual(c.Hosts, []string{"a.example", "b.example"})
		}},
		{"beats the file", map[string]string{"HTTPSD_LOG_FORMAT": "text", "HTTPSD_LIMITS_IDLE_TIMEOUT": "5m"}, "testdata/full.yaml", func(c *Config) bool {
			return c.Log.Format == "text" && c.Limits.IdleTimeout == 5*time.Minute && c.Log.Level == "debug"
		}},
		{"bool and int", map[string]string{"HTTPSD_LOG_ACCESS": "false", "HTTPSD_LISTEN_PUBLIC_HTTPS_PORT": "443"}, "", func(c *Config) bool {
			return !c.Log.Access && c.Listen.PublicHTTPSPort == 443
		}},
		{"storage shorthand and secrets", map[string]string{"HTTPSD_TLS_ACME_STORAGE": "redis://r:6379/1",
			"HTTPSD_TLS_ACME_STORAGE_PASSWORD": "pw", "HTTPSD_TLS_SESSION_TICKETS_SHARED": "true",
			"HTTPSD_CLUSTER_SECRET": strings.Repeat("ab", 32)}, "", func(c *Config) bool {
			return c.TLS.ACME.Storage.URL == "redis://r:6379/1" && c.TLS.ACME.Storage.Password == "pw" && c.Cluster.Secret != ""
		}},
		{"base64 secret", map[string]string{"HTTPSD_CLUSTER_SECRET": "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="}, "", func(c *Config) bool {
			return c.Cluster.Secret != ""
		}},
		{"path stays relative to the working directory", map[string]string{"HTTPSD_DATA_DIR": "d"}, "testdata/full.yaml", func(c *Config) bool {
			return c.DataDir == "d"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(tt.file, env(tt.vars))
			if err != nil {
				t.Fatalf("loadConfig with %v: %v", tt.vars, err)
			}
			if !tt.want(c) {
				t.Errorf("loadConfig with %v = %+v", tt.vars, c)
			}
		})
	}
}

func TestConfigBadEnv(t *testing.T) {
	tests := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"HTTPSD_TLS_SOURCE": "x"}, `env HTTPSD_TLS_SOURCE: tls.source: must be one of self-signed, files, acme; got "x"`},
		{map[string]string{"HTTPSD_LIMITS_READ_TIMEOUT": "soon"}, `env HTTPSD_LIMITS_READ_TIMEOUT: limits.read_timeout: not a duration such as 30s, 5m or 1h: "soon"`},
		{map[string]string{"HTTPSD_LISTEN_HTTPS": ""}, `env HTTPSD_LISTEN_HTTPS: listen.https: must be HOST:PORT or :PORT, such as :8443; got ""`},
		{map[string]string{"HTTPSD_CLUSTER_SECRET": strings.Repeat("ab", 16)},
			"env HTTPSD_CLUSTER_SECRET: cluster.secret: has 16 bytes; it needs 32 random bytes, as openssl rand -hex 32 prints them (64 hex characters)"},
		{map[string]string{"HTTPSD_CLUSTER_SECRET": "not a secret!"},
			"env HTTPSD_CLUSTER_SECRET: cluster.secret: not hex or base64; make one with openssl rand -hex 32"},
		{map[string]string{"HTTPSD_TLS_SESSION_TICKETS_SHARED": "true", "HTTPSD_CLUSTER_SECRET": strings.Repeat("ab", 32)},
			"env HTTPSD_TLS_SESSION_TICKETS_SHARED: tls.session_tickets.shared: needs tls.acme.storage: the replicas share the keys through it"},
		{map[string]string{"HTTPSD_LOG_ACCESS": "yes please", "HTTPSD_HOSTS": "a.example,-b"},
			`env HTTPSD_LOG_ACCESS: log.access: not a boolean (true or false): "yes please"` + "\n" +
				`env HTTPSD_HOSTS: hosts: entry 2: "-b" is not a host name`},
	}
	for _, tt := range tests {
		_, err := loadConfig("", env(tt.vars))
		if err == nil || err.Error() != tt.want {
			t.Errorf("loadConfig with %v = %v,\nwant %s", tt.vars, err, tt.want)
		}
	}
}

// TestConfigBadFiles checks each testdata/bad-*.yaml against the error text
// in its "# want:" lines.
func TestConfigBadFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad-*.yaml")
	if len(files) < 5 {
		t.Fatalf("found %d testdata/bad-*.yaml files, want at least 5", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					want = append(want, w)
				}
			}
			if len(want) == 0 {
				t.Fatalf("%s has no # want: line", file)
			}
			_, err = loadConfig(file, env(nil))
			if err == nil {
				t.Fatalf("loadConfig(%s) = nil error, want:\n%s", file, strings.Join(want, "\n"))
			}
			if got := err.Error(); got != strings.Join(want, "\n") {
				t.Errorf("loadConfig(%s) =\n%s\nwant:\n%s", file, got, strings.Join(want, "\n"))
			}
		})
	}
}

func TestExampleConfigLoads(t *testing.T) {
	c, err := loadConfig("config.yaml", env(nil))
	if err != nil {
		t.Fatalf("config.yaml, the example: %v", err)
	}
	c.origin = map[string]string{}
	def := defaultConfig()
	def.normalize()
	if !reflect.DeepEqual(c, def) {
		t.Errorf("config.yaml = %+v, want the defaults it documents: %+v", c, def)
	}
}

func TestEnvName(t *testing.T) {
	for key, want := range map[string]string{
		"hosts": "HTTPSD_HOSTS", "listen.https": "HTTPSD_LISTEN_HTTPS", "limits.max_header_bytes": "HTTPSD_LIMITS_MAX_HEADER_BYTES",
	} {
		if got := envName(key); got != want {
			t.Errorf("envName(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestMaxConnsFromFileLimit(t *testing.T) {
	for _, tt := range []struct {
		configured int
		fdLimit    uint64
		want       int
	}{
		{0, 1024, 1024 - 64 - 128},
		{0, 0, 0},                  // no limit to derive from (Windows): no cap
		{500, 0, 500},              // as configured
		{500, 1024, 500},           // below what the limit allows
		{5000, 300, 300 - 64 - 37}, // above: lowered, the reserve kept
		{0, 50, 16},
	} {
		if got := maxConns(tt.configured, tt.fdLimit); got != tt.want {
			t.Errorf("maxConns(%d, fd limit %d) = %d, want %d", tt.configured, tt.fdLimit, got, tt.want)
		}
	}
}
