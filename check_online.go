package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/httpsd/httpsd/certs"
	"github.com/httpsd/httpsd/cluster"
)

// onlineChecks looks for whatever would make ACME issuance fail: an
// unreachable directory, a data_dir that cannot be written, hosts without
// A/AAAA records. It prints one line per finding and returns how many
// would block issuance. DNS goes to resolver (HOST:PORT) when not "".
func onlineChecks(ctx context.Context, cfg *Config, hosts []string, resolver string, store *cluster.Store, out io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	blocked := 0
	report := func(ok bool, format string, args ...any) {
		if !ok {
			blocked++
			format = "FAIL " + format
		} else {
			format = "ok   " + format
		}
		fmt.Fprintf(out, format+"\n", args...)
	}
	if cfg.TLS.Source == sourceACME {
		err := fetchDirectory(ctx, cfg.TLS.ACME)
		report(err == nil, "acme directory %s%s", cfg.TLS.ACME.Directory, hint(err))
		err = checkWritable(cfg.DataDir)
		report(err == nil, "data_dir %s writable%s", cfg.DataDir, hint(err))
	}
	for _, u := range upstreams(cfg) {
		err := dialUpstream(ctx, u)
		report(err == nil, "upstream %s%s", u, upstreamHint(err))
	}
	if store != nil {
		err := store.Probe(ctx)
		report(err == nil, "storage %s: reachable, authenticated, probe key written, read and deleted%s", store, storageHint(err))
	}
	r := net.DefaultResolver
	if resolver != "" {
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, resolver)
		}}
	}
	for _, h := range hosts {
		if _, err := netip.ParseAddr(h); err == nil || h == "localhost" || strings.HasPrefix(h, "*.") {
			continue
		}
		addrs, err := r.LookupNetIP(ctx, "ip", h)
		if err != nil || len(addrs) == 0 {
			report(false, "host %s: no A/AAAA record (%v); hint: create an A or AAAA record pointing at this server's public address", h, err)
			continue
		}
		line := fmt.Sprintf("host %s: %v", h, addrs)
		if !anyPublic(addrs) {
			line += "; note: only non-public addresses, which a public CA cannot reach"
		}
		report(true, "%s", line)
	}
	return blocked
}

// hint turns an error into ": error; hint: how to fix it", or "".
func hint(err error) string {
	if err == nil {
		return ""
	}
	var unknown x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var dnsErr *net.DNSError
	h := "check the URL, and that this machine can reach it (firewall, proxy)"
	switch {
	case errors.As(err, &unknown), errors.As(err, &hostErr):
		h = "the directory's TLS certificate is not trusted: for a private or test CA, set tls.acme.ca_roots to its root PEM"
	case errors.As(err, &dnsErr):
		h = "the directory's host name does not resolve: check the URL and this machine's DNS"
	case errors.Is(err, syscall.ECONNREFUSED):
		h = "nothing listens there: check the URL and that the CA is running"
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EROFS):
		h = "make data_dir writable by the user httpsd runs as, on persistent storage"
	}
	return ": " + err.Error() + "; hint: " + h
}

// fetchDirectory GETs the ACME directory and checks it names newNonce,
// newAccount and newOrder.
func fetchDirectory(ctx context.Context, a ACMEConfig) error {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if a.CARoots != "" {
		pool, err := certs.LoadRoots(a.CARoots)
		if err != nil {
			return err
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	client := &http.Client{Transport: transport, Timeout: 15 * time.Second}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", a.Directory, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	var dir struct{ NewNonce, NewAccount, NewOrder string }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&dir); err != nil {
		return fmt.Errorf("not an ACME directory: %w", err)
	}
	if dir.NewNonce == "" || dir.NewAccount == "" || dir.NewOrder == "" {
		return errors.New("not an ACME directory: newNonce, newAccount or newOrder missing")
	}
	return nil
}

// checkWritable reports whether dir, or the nearest existing parent that
// would hold it, is writable, without writing anything.
func checkWritable(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			if err := canWrite(d); err != nil {
				return &os.PathError{Op: "write", Path: d, Err: err}
			}
			return nil
		}
		if d == filepath.Dir(d) {
			return fmt.Errorf("no existing parent of %s", dir)
		}
	}
}

func anyPublic(addrs []netip.Addr) bool {
	for _, a := range addrs {
		if a.IsGlobalUnicast() && !a.IsPrivate() {
			return true
		}
	}
	return false
}

// upstreams lists every proxy route's upstreams once.
func upstreams(cfg *Config) []string {
	var out []string
	for _, r := range cfg.Routes {
		if r.Proxy == nil {
			continue
		}
		for _, u := range r.Proxy.Upstreams {
			if !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	return out
}

// dialUpstream connects to an upstream (validated already) and hangs up.
func dialUpstream(ctx context.Context, upstream string) error {
	network, addr := "unix", strings.TrimPrefix(upstream, "unix:")
	if u, err := url.Parse(upstream); err == nil && u.Scheme == "http" {
		network, addr = "tcp", u.Host
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func upstreamHint(err error) string {
	if err == nil {
		return " answers"
	}
	h := "check the address, and that the app is running"
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, os.ErrNotExist):
		h = "nothing listens there: start the app (e.g. gunicorn --bind ...) or fix the address"
	case errors.Is(err, os.ErrPermission):
		h = "httpsd may not connect to the socket: give its user access (group and mode of the socket)"
	}
	return ": " + err.Error() + "; hint: " + h
}

// storageHint turns a failed storage probe into ": error; hint: how to
// fix it", or "".
func storageHint(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var h string
	switch {
	case strings.Contains(msg, "cluster: authenticate"):
		h = "Redis refused the credentials: set HTTPSD_TLS_ACME_STORAGE_PASSWORD or tls.acme.storage.password_file to its password (and the user name in the URL, for an ACL user)"
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:"):
		h = "the TLS connection failed: for a private CA, set tls.acme.storage.ca_roots to its root PEM; for a server without TLS use redis://"
	case errors.Is(err, syscall.ECONNREFUSED):
		h = "nothing listens there: check the URL and that Redis is running"
	case strings.Contains(msg, "READONLY"):
		h = "this Redis is a read-only replica: point tls.acme.storage at the primary"
	case strings.Contains(msg, "NOPERM"):
		h = "the Redis user may not run SET, GET, DEL, EVALSHA and PEXPIRE on the keys under tls.acme.storage.key_prefix: grant them in its ACL"
	case strings.Contains(msg, "OOM"):
		h = "Redis is out of memory (maxmemory): raise it, or use a policy that does not refuse writes"
	case strings.Contains(msg, "cluster: connect"):
		h = "check the host and port, and that this machine can reach them (firewall, DNS, TLS with rediss://)"
	default:
		h = "check the Redis server's log"
	}
	return ": " + msg + "; hint: " + h
}
