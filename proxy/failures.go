package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"
)

// failed records that a request broke off on u with err (of errKind kind)
// and reports whether that marked u down: at once when u could not be
// reached (refused, unreachable, dial timeout), after MaxFails requests in
// a row that broke off (reset, closed before the answer). A slow answer
// (ResponseHeaderTimeout) is the request's, not the upstream's, and does
// not count; active health checks find an upstream that hangs.
func (p *Proxy) failed(u *upstream, err error, kind string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lastErr = err
	switch {
	case dialFailed(err):
	case kind == "reset" && int(u.fails.Add(1)) >= p.o.MaxFails:
	default:
		return false
	}
	u.fails.Store(0)
	was := u.downUntil.Load()
	now := time.Now()
	u.downUntil.Store(now.Add(p.o.FailTimeout).UnixNano())
	return now.UnixNano() > was
}

// succeeded records that u answered: failures in a row start again from
// zero and a passive mark ends.
func (u *upstream) succeeded() {
	if u.fails.Load() != 0 {
		u.fails.Store(0)
	}
	if u.downUntil.Load() != 0 {
		u.downUntil.Store(0)
	}
}

// leastDown returns, when no upstream is usable, the untried one whose
// passive mark ends first among those the active checks find healthy, or
// nil: marks are a hint for spreading traffic, and a request is better sent
// to an upstream that failed a moment ago than answered 502 unsent.
func (p *Proxy) leastDown(tried []*upstream) *upstream {
	var best *upstream
	for _, u := range p.ups {
		if slices.Contains(tried, u) || u.activeBad.Load() {
			continue
		}
		if best == nil || u.downUntil.Load() < best.downUntil.Load() {
			best = u
		}
	}
	return best
}

// sendAgain reports whether req, which broke off on an upstream with err,
// may go to another: it is idempotent and has no body, and it either never
// reached the upstream or broke off before an answer (not a timeout: the
// upstream may still be working on it).
func sendAgain(req *http.Request, err error, kind string) bool {
	if !idempotent(req.Method) || req.Body != nil && req.Body != http.NoBody {
		return false
	}
	return dialFailed(err) || kind == "reset"
}

// dialFailed reports whether err means the upstream could not be reached.
func dialFailed(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.As(err, &op) && op.Op == "dial"
}

// clientBody is a request body that remembers the error its client's
// stream failed with, so that a broken upload is told from a broken
// upstream.
type clientBody struct {
	io.ReadCloser
	mu  sync.Mutex
	err error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
	}
	return n, err
}

// failed returns the error reading the client's body failed with, if any;
// b may be nil (no body).
func (b *clientBody) failed() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// clientError is a request that failed because its client's body did:
// too large, too slow or cut off.
type clientError struct{ err error }

func (e clientError) Error() string { return "client body: " + e.err.Error() }
func (e clientError) Unwrap() error { return e.err }

// failClient answers a request whose body failed: 413 when it was over
// the server's limit, 408 when the client was too slow, 499 (nginx's code
// for a client that went away) otherwise. Nothing is logged as an
// upstream failure and the upstream is not marked.
func (p *Proxy) failClient(w http.ResponseWriter, r *http.Request, e clientError) {
	var mbe *http.MaxBytesError
	var ne net.Error
	status, msg := 499, ""
	switch {
	case errors.As(e.err, &mbe):
		status, msg = http.StatusRequestEntityTooLarge, "413 request body too large\n"
	case errors.As(e.err, &ne) && ne.Timeout():
		status, msg = http.StatusRequestTimeout, "408 request timeout: the body came too slowly\n"
	}
	p.o.Logger.Debug("proxy: client body failed", "err", e.err.Error(), "method", r.Method, "path", r.URL.Path)
	if msg == "" {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg)
}
