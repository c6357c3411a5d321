// Package proxy is httpsd's reverse proxy: httputil.ReverseProxy (with
// Rewrite) in front of one or more upstream HTTP servers, over TCP or unix
// sockets, with a keep-alive pool per upstream, round-robin or
// least-connections balancing, passive and active health checks, retries
// of idempotent requests that could not connect, X-Forwarded-* headers that
// trust only configured proxies, and metrics per upstream.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync"
	"time"
)

// Options configures a Proxy. Zero values take the defaults in comments.
type Options struct {
	// Upstreams are the servers requests go to: "http://HOST:PORT" or
	// "unix:/path/to.sock". At least one.
	Upstreams []string
	// LB picks an upstream per request: "round_robin" (the default) or
	// "least_conn" (the one with the fewest requests in flight).
	LB string
	// MaxIdleConns is how many idle keep-alive connections are kept per
	// upstream; 32.
	MaxIdleConns int
	// DialTimeout bounds connecting to an upstream; 5s.
	DialTimeout time.Duration
	// FailTimeout is how long an upstream is skipped once it is marked
	// down: when it refuses a connection (or the dial times out), or after
	// MaxFails requests in a row broke off on it; 10s. While every upstream
	// is marked down, requests are sent to them anyway (the one whose mark
	// ends first), so that a single failure cannot take a site down.
	// Answers that are slow (ResponseHeaderTimeout) and requests whose
	// client went away or sent a bad body do not count.
	FailTimeout time.Duration
	// MaxFails is how many requests in a row must break off on an upstream
	// (connection reset or closed before the answer) to mark it down; 3.
	MaxFails int
	// HealthPath, when not "", is requested from every upstream each
	// HealthInterval (5s); only upstreams that answer it with 2xx or 3xx
	// get traffic.
	HealthPath     string
	HealthInterval time.Duration
	// ResponseHeaderTimeout bounds the wait for an upstream's response
	// headers (504 after it); 60s.
	ResponseHeaderTimeout time.Duration
	// HostHeader, when not "", replaces the client's Host in requests to
	// the upstreams; "" passes it through.
	HostHeader string
	// FlushInterval is how often a response is flushed to the client while
	// it is copied: 0 as httputil.ReverseProxy does (streams without a
	// length and text/event-stream at once, others when buffers fill),
	// negative after every write.
	FlushInterval time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For, -Proto, -Host
	// and Forwarded headers are passed on (with the peer appended to
	// X-Forwarded-For); from any other peer they are dropped. nil trusts
	// none.
	TrustedProxies []netip.Prefix
	// Metrics records the upstreams' requests, errors, times and health;
	// nil records nothing.
	Metrics *Metrics
	// Logger receives upstream errors and health changes; nil discards.
	Logger *slog.Logger
}

// Proxy is an http.Handler that sends requests to its upstreams. Close
// stops its health checks.
type Proxy struct {
	o    Options
	ups  []*upstream
	rp   *httputil.ReverseProxy
	pick func(tried []*upstream) *upstream
	stop context.CancelFunc
	done sync.WaitGroup
}

// New checks opts and returns a Proxy; active health checks, when
// configured, start at once.
func New(o Options) (*Proxy, error) {
	if len(o.Upstreams) == 0 {
		return nil, errors.New("proxy: no upstreams")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.DialTimeout, 5*time.Second)
	def(&o.FailTimeout, 10*time.Second)
	def(&o.HealthInterval, 5*time.Second)
	def(&o.ResponseHeaderTimeout, 60*time.Second)
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = 32
	}
	if o.MaxFails <= 0 {
		o.MaxFails = 3
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{o: o}
	switch o.LB {
	case "", "round_robin":
		p.pick = p.roundRobin()
	case "least_conn":
		p.pick = p.leastConn
	default:
		return nil, fmt.Errorf("proxy: lb must be round_robin or least_conn; got %q", o.LB)
	}
	for _, name := range o.Upstreams {
		u, err := newUpstream(name, &o)
		if err != nil {
			return nil, err
		}
		if o.Metrics != nil {
			u.stats = o.Metrics.upstream(name)
		}
		p.ups = append(p.ups, u)
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:       p.rewrite,
		Transport:     p,
		FlushInterval: o.FlushInterval,
		ErrorHandler:  p.fail,
		ErrorLog:      slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		BufferPool:    bufferPool{},
	}
	ctx, stop := context.WithCancel(context.Background())
	p.stop = stop
	if o.HealthPath != "" {
		for _, u := range p.ups {
			p.done.Go(func() { p.checkHealth(ctx, u) })
		}
	}
	if o.Metrics != nil {
		o.Metrics.add(p)
	}
	return p, nil
}

// Close stops the health checks and closes idle upstream connections;
// requests in flight carry on.
func (p *Proxy) Close() {
	p.stop()
	p.done.Wait()
	for _, u := range p.ups {
		u.transport.CloseIdleConnections()
	}
	if p.o.Metrics != nil {
		p.o.Metrics.remove(p)
	}
}

// attempt is what one proxied request learnt about its upstream.
type attempt struct {
	u        *upstream
	start    time.Time
	answered bool // u answered; it counts in u.inFlight until ServeHTTP ends
}

type attemptKey struct{}

var attempts = sync.Pool{New: func() any { return new(attempt) }}

// upstreamNoter is a ResponseWriter (httpsd's server's) that puts the
// upstream and its time in the access log line.
type upstreamNoter interface {
	NoteUpstream(name string, d time.Duration)
}

// ServeHTTP sends r to an upstream and copies the answer back.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a := attempts.Get().(*attempt)
	*a = attempt{}
	defer settle(w, a) // also when the copy ends in http.ErrAbortHandler
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), attemptKey{}, a)))
}

// settle counts a's upstream out of the requests in flight once the
// answer has been copied, notes it for the access log and recycles a.
func settle(w http.ResponseWriter, a *attempt) {
	if a.u != nil {
		if a.answered {
			a.u.inFlight.Add(-1)
		}
		noteUpstream(w, a.u.name, time.Since(a.start))
	}
	*a = attempt{}
	attempts.Put(a)
}

func noteUpstream(w http.ResponseWriter, name string, d time.Duration) {
	for {
		switch v := w.(type) {
		case upstreamNoter:
			v.NoteUpstream(name, d)
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return
		}
	}
}

// rewrite sets the forwarding headers: the client's X-Forwarded-* and
// Forwarded headers are kept only from a trusted proxy.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	if p.trusted(pr.In.RemoteAddr) {
		for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded"} {
			if v, ok := pr.In.Header[h]; ok {
				pr.Out.Header[h] = v
			}
		}
	}
	proto, host := pr.Out.Header["X-Forwarded-Proto"], pr.Out.Header["X-Forwarded-Host"]
	pr.SetXForwarded()
	if proto != nil { // from a trusted proxy
		pr.Out.Header["X-Forwarded-Proto"] = proto
	}
	if host != nil {
		pr.Out.Header["X-Forwarded-Host"] = host
	}
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "upstream" // RoundTrip picks the upstream
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	if p.o.HostHeader != "" {
		pr.Out.Host = p.o.HostHeader
	}
}

func (p *Proxy) trusted(remote string) bool {
	if len(p.o.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, pfx := range p.o.TrustedProxies {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// errNoUpstream is the error when no upstream may get traffic.
type errNoUpstream struct{ last error }

func (e errNoUpstream) Error() string {
	if e.last != nil {
		return "no usable upstream; last error: " + e.last.Error()
	}
	return "no usable upstream"
}

// fail answers a request no upstream answered: 504 after a timeout, 502
// otherwise, with a short body naming nothing internal, and one log line
// naming the upstream and the error.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		w.WriteHeader(499) // the client went away; nginx's code for it
		return
	}
	if ce, ok := err.(clientError); ok {
		p.failClient(w, r, ce)
		return
	}
	status, msg := http.StatusBadGateway, "502 bad gateway\n"
	if errKind(err) == "timeout" {
		status, msg = http.StatusGatewayTimeout, "504 gateway timeout\n"
	}
	name := ""
	if a, _ := r.Context().Value(attemptKey{}).(*attempt); a != nil && a.u != nil {
		name = a.u.name
	}
	p.o.Logger.Error("proxy: upstream failed", "upstream", name, "err", err.Error(), "method", r.Method, "path", r.URL.Path)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg)
}

// idempotent reports whether a request with method may be sent twice.
func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// RoundTrip sends req to an upstream the balancer picks, and to another
// when the request could not be sent or broke off before an answer and may
// be sent again (idempotent, no body), as nginx's proxy_next_upstream
// "error" does. It is the ReverseProxy's Transport.
func (p *Proxy) RoundTrip(req *http.Request) (*http.Response, error) {
	a, _ := req.Context().Value(attemptKey{}).(*attempt)
	var body *clientBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &clientBody{ReadCloser: req.Body}
		req.Body = body
	}
	var tried [4]*upstream
	triedList := tried[:0]
	var last error
	for {
		u := p.pick(triedList)
		if u == nil {
			u = p.leastDown(triedList)
		}
		if u == nil {
			return nil, errNoUpstream{last}
		}
		req.URL.Host = u.host
		start := time.Now()
		if a != nil {
			a.u, a.start = u, start
		}
		u.inFlight.Add(1)
		resp, err := u.transport.RoundTrip(req)
		if err == nil {
			u.answered(resp.StatusCode, time.Since(start))
			u.succeeded()
			if a != nil {
				a.answered = true
			} else {
				u.inFlight.Add(-1)
			}
			return resp, nil
		}
		u.inFlight.Add(-1)
		if cerr := body.failed(); cerr != nil {
			return nil, clientError{cerr} // the client's fault, not the upstream's
		}
		if req.Context().Err() != nil {
			return nil, err
		}
		kind := errKind(err)
		u.errored(kind)
		if p.failed(u, err, kind) {
			p.o.Logger.Warn("proxy: upstream marked down", "upstream", u.name, "for", p.o.FailTimeout.String(), "err", err.Error())
		}
		last = fmt.Errorf("%s: %w", u.name, err)
		if !sendAgain(req, err, kind) {
			return nil, err
		}
		p.o.Logger.Warn("proxy: upstream failed; trying another", "upstream", u.name, "err", err.Error())
		triedList = append(triedList, u)
	}
}

// Addr returns the upstreams' addresses, for logs.
func (p *Proxy) Addr() []string {
	out := make([]string, len(p.ups))
	for i, u := range p.ups {
		out[i] = u.name
	}
	return out
}

// bufferPool reuses ReverseProxy's copy buffers, held as array pointers
// so that putting one back allocates nothing.
type bufferPool struct{}

const copyBufferSize = 32 << 10

var copyBuffers = sync.Pool{New: func() any { return new([copyBufferSize]byte) }}

func (bufferPool) Get() []byte { return copyBuffers.Get().(*[copyBufferSize]byte)[:] }

func (bufferPool) Put(b []byte) {
	if len(b) == copyBufferSize {
		copyBuffers.Put((*[copyBufferSize]byte)(b))
	}
}
