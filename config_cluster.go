package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/httpsd/httpsd/certs"
)

// validateCluster checks tls.acme.storage, tls.session_tickets and
// cluster: what replicas share.
func (c *Config) validateCluster() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, c.errorf(key, format, args...))
	}
	st := c.TLS.ACME.Storage
	if st.URL != "" {
		if err := checkStorageURL(st.URL); err != nil {
			bad("tls.acme.storage.url", "%v", err)
		} else if st.CARoots != "" && !strings.HasPrefix(st.URL, "rediss://") {
			bad("tls.acme.storage.ca_roots", "is for rediss:// (Redis over TLS); the URL is %s", redactedURL(st.URL))
		}
	}
	if st.Password != "" && st.PasswordFile != "" {
		bad("tls.acme.storage.password_file", "set either it or HTTPSD_TLS_ACME_STORAGE_PASSWORD, not both")
	}
	if p := st.KeyPrefix; p == "" || len(p) > 64 || strings.ContainsAny(p, " \t\r\n") {
		bad("tls.acme.storage.key_prefix", "must be 1 to 64 characters without spaces, such as \"httpsd:\"; got %q", p)
	}
	if d := st.LockTTL; d < time.Second || d > 10*time.Minute {
		bad("tls.acme.storage.lock_ttl", "must be from 1s to 10m; got %s", fmtDuration(d))
	}
	t := c.TLS.SessionTickets
	if d := t.Rotate; d < time.Minute || d > 7*24*time.Hour {
		bad("tls.session_tickets.rotate", "must be from 1m to 168h; got %s", fmtDuration(d))
	}
	if d := t.Keep; d < time.Minute || d > 30*24*time.Hour {
		bad("tls.session_tickets.keep", "must be from 1m to 720h; got %s", fmtDuration(d))
	}
	if t.Shared {
		if st.URL == "" {
			bad("tls.session_tickets.shared", "needs tls.acme.storage: the replicas share the keys through it")
		}
		if c.Cluster.Secret == "" && c.Cluster.SecretFile == "" {
			bad("tls.session_tickets.shared", "needs the cluster secret that encrypts the keys: set HTTPSD_CLUSTER_SECRET or cluster.secret_file to the output of openssl rand -hex 32, the same on every replica")
		}
	}
	if c.Cluster.Secret != "" {
		if c.Cluster.SecretFile != "" {
			bad("cluster.secret_file", "set either it or HTTPSD_CLUSTER_SECRET, not both")
		}
		if _, err := decodeSecret(c.Cluster.Secret); err != nil {
			bad("cluster.secret", "%v", err)
		}
	}
	return errs
}

// checkStorageURL accepts redis:// and rediss:// URLs with a host, an
// optional database number, and no password (which belongs elsewhere).
func checkStorageURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("must be redis://HOST:PORT/DB or rediss://HOST:PORT/DB; got %q", redactedURL(s))
	}
	if _, ok := u.User.Password(); ok {
		return errors.New("holds a password: set HTTPSD_TLS_ACME_STORAGE_PASSWORD or tls.acme.storage.password_file instead, so that it stays out of config files and logs")
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return fmt.Errorf("the database after the host must be a number such as /0; got %q", u.Path)
		}
	}
	return nil
}

func redactedURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

// decodeSecret decodes the cluster secret: hex, as openssl rand -hex 32
// prints it, or base64 (standard or URL alphabet, padded or not), of at
// least 32 bytes.
func decodeSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err = enc.DecodeString(s); err == nil {
				break
			}
		}
	}
	switch {
	case err != nil:
		return nil, errors.New("not hex or base64; make one with openssl rand -hex 32")
	case len(b) < 32:
		return nil, fmt.Errorf("has %d bytes; it needs 32 random bytes, as openssl rand -hex 32 prints them (64 hex characters)", len(b))
	}
	return b, nil
}

// clusterSecrets reads what the storage and the shared ticket keys need
// from the environment or their files: the Redis password and the
// cluster secret (nil unless the ticket keys are shared).
func clusterSecrets(cfg *Config) (password string, secret []byte, err error) {
	st := cfg.TLS.ACME.Storage
	password = st.Password
	if st.PasswordFile != "" {
		data, err := certs.ReadFile(st.PasswordFile)
		if err != nil {
			return "", nil, fmt.Errorf("tls.acme.storage.password_file: %w", err)
		}
		password = strings.TrimRight(string(data), "\r\n")
	}
	if !cfg.TLS.SessionTickets.Shared {
		return password, nil, nil
	}
	s := cfg.Cluster.Secret
	if f := cfg.Cluster.SecretFile; f != "" {
		data, err := certs.ReadFile(f)
		if err != nil {
			return "", nil, fmt.Errorf("cluster.secret_file: %w", err)
		}
		if secret, err = decodeSecret(string(data)); err != nil {
			return "", nil, fmt.Errorf("cluster.secret_file: %s: %w", f, err)
		}
		return password, secret, nil
	}
	secret, err = decodeSecret(s)
	if err != nil {
		return "", nil, fmt.Errorf("env HTTPSD_CLUSTER_SECRET: cluster.secret: %w", err)
	}
	return password, secret, nil
}
