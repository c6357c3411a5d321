package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// upstream is one backend server with its own keep-alive pool and health.
type upstream struct {
	name      string // as configured: "http://127.0.0.1:8000" or "unix:/run/app.sock"
	host      string // the URL host requests are written for
	transport *http.Transport
	inFlight  atomic.Int64   // requests sent and not yet answered in full
	stats     *upstreamStats // nil: no metrics
	downUntil atomic.Int64   // passive health: skipped until then (Unix ns); 0: not marked
	activeBad atomic.Bool    // active health: the last check failed
	fails     atomic.Int32   // requests in a row that broke off on it

	mu          sync.Mutex // serializes marking and checks, for their logs
	activeKnown bool       // an active check has run
	lastErr     error
}

// parseUpstream checks an upstream address: http://HOST:PORT (no path,
// query or user info) or unix:/absolute/path.sock.
func parseUpstream(s string) (network, addr, host string, err error) {
	if path, ok := strings.CutPrefix(s, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return "", "", "", fmt.Errorf("proxy: upstream %q: a unix socket path must be absolute", s)
		}
		return "unix", path, "localhost", nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", "", "", fmt.Errorf("proxy: upstream %q: %w", s, err)
	}
	if u.Scheme != "http" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", "", "", fmt.Errorf("proxy: upstream %q: want http://HOST:PORT or unix:/path.sock", s)
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
		return "", "", "", fmt.Errorf("proxy: upstream %q: want http://HOST:PORT with a port", s)
	}
	return "tcp", u.Host, u.Host, nil
}

func newUpstream(name string, o *Options) (*upstream, error) {
	network, addr, host, err := parseUpstream(name)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConns:          o.MaxIdleConns,
		MaxIdleConnsPerHost:   o.MaxIdleConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass the client's Accept-Encoding and the app's encoding through
		ForceAttemptHTTP2:     false,
	}
	return &upstream{name: name, host: host, transport: t}, nil
}

// usable reports whether u may get traffic at now: not marked down by
// failures, and healthy by the last active check when there is one.
func (u *upstream) usable(now time.Time) bool {
	return now.UnixNano() > u.downUntil.Load() && !u.activeBad.Load()
}

// errKind classifies an error reaching an upstream: "connect" (refused,
// unreachable, DNS), "timeout", "reset" (the connection broke), or
// "other".
func errKind(err error) string {
	var ne net.Error
	var op *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.As(err, &op) && op.Op == "dial":
		if errors.As(err, &ne) && ne.Timeout() {
			return "timeout"
		}
		return "connect"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout(),
		strings.Contains(err.Error(), "timeout awaiting response headers"):
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed),
		strings.Contains(err.Error(), "EOF"), strings.Contains(err.Error(), "connection reset"):
		return "reset"
	}
	return "other"
}

// CheckUpstream reports what is wrong with an upstream address, or nil:
// http://HOST:PORT or unix:/absolute/path.sock.
func CheckUpstream(s string) error {
	_, _, _, err := parseUpstream(s)
	return err
}
