package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/httpsd/httpsd/certs"
	"github.com/httpsd/httpsd/server"
)

// check validates what serve would load without creating anything and
// prints a summary; problems are errors that exit with status 2. With
// online, it also runs onlineChecks, whose blocking findings exit with 1.
func check(ctx context.Context, cfg *Config, file string, online bool, resolver string, stdout io.Writer) error {
	now := time.Now()
	if file == "" {
		file = "(built-in defaults)"
	}
	hosts := cfg.Hosts
	switch cfg.TLS.Source {
	case sourceFiles:
		set, err := certs.Files(certPairs(cfg.TLS.Certificates), now)
		if err != nil {
			return usageError{err}
		}
		hosts = hostsFor(hosts, set)
		for _, w := range append(keyPermWarnings(cfg), certWarnings(set, hosts, now)...) {
			fmt.Fprintln(stdout, "warning:", w)
		}
	case sourceACME:
		if err := certs.CheckDirPerm(cfg.DataDir); err != nil {
			return usageError{err}
		}
		if cfg.TLS.ACME.CARoots != "" {
			if _, err := certs.LoadRoots(cfg.TLS.ACME.CARoots); err != nil {
				return usageError{fmt.Errorf("tls.acme.ca_roots: %w", err)}
			}
		}
	default:
		hosts = hostsFor(hosts, nil)
		exists, err := certs.CheckLocalCA(cfg.DataDir, now)
		if err != nil {
			return usageError{err}
		}
		if !exists {
			fmt.Fprintf(stdout, "local CA: none yet; serve will create %s\n", filepath.Join(cfg.DataDir, certs.CACertFile))
		}
	}
	for i, r := range cfg.Routes {
		if r.Files == nil {
			continue
		}
		if _, err := server.Files(server.FilesOptions{Root: r.Files.Root}); err != nil {
			key := fmt.Sprintf("routes[%d]", i)
			return usageError{cfg.errorAt(key, key+".files.root", "%v", err)}
		}
	}
	if cfg.Listen.HTTP3 {
		if w := server.UDPBufferWarning(); w != "" {
			fmt.Fprintln(stdout, "warning:", w)
		}
	}
	store, _, err := openStore(cfg, nil) // reads the password, secret and roots files
	if err != nil {
		return usageError{err}
	}
	if store != nil {
		defer store.Close()
	}
	fmt.Fprintf(stdout, "%s: ok (source %s, hosts %s, https %s)\n", file, cfg.TLS.Source, strings.Join(hosts, ","), cfg.Listen.HTTPS)
	if !online {
		return nil
	}
	if n := onlineChecks(ctx, cfg, hosts, resolver, store, stdout); n > 0 {
		return fmt.Errorf("check -online: %d problem(s) would block issuance", n)
	}
	return nil
}
