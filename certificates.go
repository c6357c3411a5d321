package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/httpsd/httpsd/certs"
	"github.com/httpsd/httpsd/cluster"
)

// hostsFor returns the hosts served: the configured ones, else the
// names in the certificate files (set) or, for the local CA, localhost,
// 127.0.0.1 and ::1.
func hostsFor(configured []string, set *certs.Set) []string {
	switch {
	case len(configured) > 0:
		return configured
	case set != nil:
		return set.Names()
	}
	return []string{"localhost", "127.0.0.1", "::1"}
}

// expiryWarning is how close to its end a certificate draws a warning.
const expiryWarning = 14 * 24 * time.Hour

// certSource is the configured certificate source as serve runs it.
type certSource struct {
	hosts []string                  // as configured, else the source's default
	set   atomic.Pointer[certs.Set] // self-signed and files; swapped on reload
	acme  *certs.ACME               // acme
	files *certs.FileWatcher        // files
}

// GetCertificate is the source's tls.Config.GetCertificate.
func (s *certSource) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s.acme != nil {
		return s.acme.GetCertificate(hello)
	}
	return s.set.Load().GetCertificate(hello)
}

// ready returns why some of hosts has no valid certificate, or nil: a
// certificate has expired, or no certificate covers some hosts (all named).
func (s *certSource) ready(hosts []string, now time.Time) error {
	if s.acme != nil {
		var errs []error
		for _, st := range s.acme.Stats() {
			if !st.Ready {
				errs = append(errs, fmt.Errorf("no certificate for %s yet (last error: %v)", st.Host, st.LastError))
			}
		}
		return errors.Join(errs...)
	}
	set := s.set.Load()
	var errs []error
	for _, leaf := range set.Leaves() {
		if now.After(leaf.NotAfter) {
			errs = append(errs, fmt.Errorf("certificate for %s expired on %s", strings.Join(leaf.DNSNames, ","), leaf.NotAfter.UTC().Format(time.RFC3339)))
		}
	}
	if h := uncovered(set, hosts); len(h) > 0 {
		errs = append(errs, fmt.Errorf("no certificate covers %s", strings.Join(h, ", ")))
	}
	return errors.Join(errs...)
}

// uncovered returns the hosts that no certificate in set covers; a
// wildcard host ("*.example.com") needs a certificate for that wildcard.
func uncovered(set *certs.Set, hosts []string) []string {
	var out []string
	for _, h := range hosts {
		if !set.Covers(h) {
			out = append(out, h)
		}
	}
	return out
}

// loadCertificates sets up the configured source: it loads the files,
// loads or creates the local CA, or prepares ACME (which issues once Run).
func loadCertificates(cfg *Config, now time.Time, logger *slog.Logger, store *cluster.Store) (*certSource, error) {
	src := &certSource{hosts: cfg.Hosts}
	switch cfg.TLS.Source {
	case sourceFiles:
		pairs := certPairs(cfg.TLS.Certificates)
		set, err := certs.Files(pairs, now)
		if err != nil {
			return nil, err
		}
		src.set.Store(set)
		src.files = certs.NewFileWatcher(pairs, src.set.Store, logger)
		src.hosts = hostsFor(cfg.Hosts, set)
	case sourceACME:
		a, err := newACME(cfg, logger, store)
		if err != nil {
			return nil, err
		}
		src.acme = a
	default:
		src.hosts = hostsFor(cfg.Hosts, nil)
		set, err := certs.LocalCA(cfg.DataDir, src.hosts, now)
		if err != nil {
			return nil, err
		}
		src.set.Store(set)
	}
	return src, nil
}

// acmeCacheDir is where ACME keeps its account key and certificates.
func acmeCacheDir(cfg *Config) string { return filepath.Join(cfg.DataDir, "acme") }

// newACME sets up ACME for cfg; with store, its state is shared with
// the other replicas and each certificate ordered once.
func newACME(cfg *Config, logger *slog.Logger, store *cluster.Store) (*certs.ACME, error) {
	a := cfg.TLS.ACME
	opts := certs.ACMEOptions{
		Hosts:        cfg.Hosts,
		CacheDir:     acmeCacheDir(cfg),
		DirectoryURL: a.Directory,
		Email:        a.Email,
		RenewBefore:  a.RenewBefore,
		EABKeyID:     a.EAB.KID,
		Logger:       logger,
	}
	if a.CARoots != "" {
		pool, err := certs.LoadRoots(a.CARoots)
		if err != nil {
			return nil, fmt.Errorf("tls.acme.ca_roots: %w", err)
		}
		opts.CARoots = pool
	}
	if a.EAB.HMACKey != "" {
		opts.EABKey, _ = decodeBase64URL(a.EAB.HMACKey) // validated
	}
	if err := certs.CheckDirPerm(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if store != nil {
		sharedACME(&opts, store, a.Storage.LockTTL)
	}
	return certs.NewACME(opts)
}

func certPairs(files []CertFiles) []certs.Pair {
	pairs := make([]certs.Pair, len(files))
	for i, f := range files {
		pairs[i] = certs.Pair{Cert: f.Cert, Key: f.Key}
	}
	return pairs
}

// keyPermWarnings lists the key files of tls.certificates that others can
// read: only a warning, as Kubernetes mounts Secrets 0644 by default.
func keyPermWarnings(cfg *Config) []string {
	if cfg.TLS.Source != sourceFiles {
		return nil
	}
	var warns []string
	for _, p := range cfg.TLS.Certificates {
		if err := certs.CheckKeyPerm(p.Key); err != nil {
			warns = append(warns, err.Error())
		}
	}
	return warns
}

// certWarnings lists what is not fatal but wrong: certificates that end
// within expiryWarning and hosts that no certificate covers.
func certWarnings(set *certs.Set, hosts []string, now time.Time) []string {
	var warns []string
	for _, leaf := range set.Leaves() {
		if left := leaf.NotAfter.Sub(now); left < expiryWarning {
			warns = append(warns, fmt.Sprintf("certificate for %s expires in %.1f days, on %s",
				strings.Join(leaf.DNSNames, ", "), left.Hours()/24, leaf.NotAfter.UTC().Format(time.RFC3339)))
		}
	}
	for _, h := range uncovered(set, hosts) {
		warns = append(warns, fmt.Sprintf("host %s is covered by no certificate; browsers will refuse it", h))
	}
	return warns
}
