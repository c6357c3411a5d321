package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"httpsd/certs"
)

// defaultSelfSignedHosts are served by the local CA when hosts is unset.
var defaultSelfSignedHosts = []string{"localhost", "127.0.0.1", "::1"}

// expiryWarning is how close to its end a certificate draws a warning.
const expiryWarning = 14 * 24 * time.Hour

// loadCertificates returns the certificates to serve and the hosts to
// answer for: hosts as configured, else the source's default.
func loadCertificates(cfg *Config, now time.Time) (*certs.Set, []string, error) {
	hosts := cfg.Hosts
	switch cfg.TLS.Source {
	case sourceFiles:
		set, err := certs.Files(certPairs(cfg.TLS.Certificates), now)
		if err != nil {
			return nil, nil, err
		}
		if len(hosts) == 0 {
			hosts = set.Names()
		}
		return set, hosts, nil
	default:
		if len(hosts) == 0 {
			hosts = defaultSelfSignedHosts
		}
		set, err := certs.LocalCA(cfg.DataDir, hosts, now)
		return set, hosts, err
	}
}

func certPairs(files []CertFiles) []certs.Pair {
	pairs := make([]certs.Pair, len(files))
	for i, f := range files {
		pairs[i] = certs.Pair{Cert: f.Cert, Key: f.Key}
	}
	return pairs
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
	for _, h := range hosts {
		if !set.Covers(strings.TrimPrefix(h, "*.")) && !set.Covers(h) {
			warns = append(warns, fmt.Sprintf("host %s is covered by no certificate; browsers will refuse it", h))
		}
	}
	return warns
}

// check validates what serve would load without creating anything and
// prints a summary; problems are errors that exit with status 2.
func check(cfg *Config, file string, stdout io.Writer) error {
	now := time.Now()
	if file == "" {
		file = "(built-in defaults)"
	}
	var set *certs.Set
	hosts := cfg.Hosts
	switch cfg.TLS.Source {
	case sourceFiles:
		var err error
		if set, hosts, err = loadCertificates(cfg, now); err != nil {
			return usageError{err}
		}
	default:
		if len(hosts) == 0 {
			hosts = defaultSelfSignedHosts
		}
		exists, err := certs.CheckLocalCA(cfg.DataDir, now)
		if err != nil {
			return usageError{err}
		}
		if !exists {
			fmt.Fprintf(stdout, "local CA: none yet; serve will create %s\n", filepath.Join(cfg.DataDir, certs.CACertFile))
		}
	}
	if set != nil {
		for _, w := range certWarnings(set, hosts, now) {
			fmt.Fprintln(stdout, "warning:", w)
		}
	}
	fmt.Fprintf(stdout, "%s: ok (source %s, hosts %s, https %s)\n", file, cfg.TLS.Source, strings.Join(hosts, ","), cfg.Listen.HTTPS)
	return nil
}
