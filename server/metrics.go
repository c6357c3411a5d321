package server

import (
	"crypto/tls"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/httpsd/httpsd/metrics"
)

// serverMetrics are the HTTP and TLS series the server records.
type serverMetrics struct {
	requests          metrics.CounterVec // route, method, code, proto
	duration          metrics.HistogramVec
	inFlight          *metrics.Gauge
	rejections        metrics.CounterVec // reason
	handshakes        metrics.CounterVec // version, group, resumed
	handshakeFailures metrics.CounterVec // reason
	h2Errors          metrics.CounterVec // type
	codes             [600]string        // status code labels, made once
	routes            sync.Map           // route name -> *routeStats
	openStreams       func() int64       // set by the server
}

func newMetrics(reg *metrics.Registry) *serverMetrics {
	m := &serverMetrics{
		requests: reg.Counter("httpsd_http_requests_total",
			"HTTPS requests answered, by route, method, status code and protocol (HTTP/1.1, HTTP/2.0, HTTP/3.0).", "route", "method", "code", "proto"),
		duration: reg.Histogram("httpsd_http_request_duration_seconds", "Time to answer HTTPS requests, by route and protocol.",
			[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "route", "proto"),
		inFlight: reg.Gauge("httpsd_http_requests_in_flight", "HTTPS requests being served now."),
		rejections: reg.Counter("httpsd_rejections_total",
			"Requests and connections refused, by reason: a status code (400, 413, 421, 429, 431, 501, 503, 505, ...), requests_per_ip, conn_per_ip, max_conns, h2_flood.",
			"reason"),
		handshakes: reg.Counter("httpsd_tls_handshakes_total",
			"TLS handshakes completed, by version, key exchange group and resumption.", "version", "group", "resumed"),
		handshakeFailures: reg.Counter("httpsd_tls_handshake_failures_total",
			"TLS handshakes that failed, by reason.", "reason"),
		h2Errors: reg.Counter("httpsd_http2_errors_total",
			"HTTP/2 protocol errors, by the type Go's HTTP/2 server gives them.", "type"),
	}
	reg.Func("httpsd_http2_streams_open", "HTTP/2 and HTTP/3 streams open: requests being served or their answers being sent.", "gauge", nil,
		func(add func(float64, ...string)) { add(float64(m.openStreams())) })
	for i := range m.codes {
		m.codes[i] = strconv.Itoa(i)
	}
	return m
}

func (m *serverMetrics) code(status int) string {
	if status >= 0 && status < len(m.codes) {
		return m.codes[status]
	}
	return strconv.Itoa(status)
}

// methods are the method label values; any other method counts as OTHER.
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

func methodIndex(m string) int {
	for i, v := range methods[:len(methods)-1] {
		if v == m {
			return i
		}
	}
	return len(methods) - 1
}

// protos are the proto label values resolved once; others are looked up.
var protos = [...]string{"HTTP/1.1", "HTTP/2.0", "HTTP/3.0", "HTTP/1.0"}

func protoIndex(p string) int {
	for i, v := range protos {
		if v == p {
			return i
		}
	}
	return -1
}

// routeStats records the requests of one route. It resolves each series
// once, since looking series up by label values costs more than the hello
// handler itself.
type routeStats struct {
	name     string
	m        *serverMetrics
	duration [len(protos)]atomic.Pointer[metrics.Histogram]
	counters [len(protos)]atomic.Pointer[routeCounters] // made on a protocol's first request
}

// routeCounters are one protocol's counters, by method and status-100.
type routeCounters [len(methods)][500]atomic.Pointer[metrics.Counter]

// route returns the stats of the route called name, made on first use.
func (m *serverMetrics) route(name string) *routeStats {
	if st, ok := m.routes.Load(name); ok {
		return st.(*routeStats)
	}
	st, _ := m.routes.LoadOrStore(name, &routeStats{name: name, m: m})
	return st.(*routeStats)
}

// observe counts a request over proto answered with status after elapsed.
func (rs *routeStats) observe(proto, method string, status int, elapsed time.Duration) {
	mi, pi := methodIndex(method), protoIndex(proto)
	if pi < 0 || status < 100 || status >= 600 {
		rs.m.duration.With(rs.name, proto).Observe(elapsed)
		rs.m.requests.With(rs.name, methods[mi], strconv.Itoa(status), proto).Inc()
		return
	}
	h := rs.duration[pi].Load()
	if h == nil {
		h = rs.m.duration.With(rs.name, proto)
		rs.duration[pi].Store(h)
	}
	h.Observe(elapsed)
	byCode := rs.counters[pi].Load()
	if byCode == nil {
		rs.counters[pi].CompareAndSwap(nil, new(routeCounters))
		byCode = rs.counters[pi].Load()
	}
	slot := &byCode[mi][status-100]
	c := slot.Load()
	if c == nil {
		c = rs.m.requests.With(rs.name, methods[mi], rs.m.code(status), proto)
		slot.Store(c)
	}
	c.Inc()
}

// handshake counts a completed handshake; it is tls.Config.VerifyConnection.
func (m *serverMetrics) handshake(cs tls.ConnectionState) error {
	group := "none" // TLS 1.2 resumption has no key exchange
	if cs.CurveID != 0 {
		group = cs.CurveID.String()
	}
	m.handshakes.With(tls.VersionName(cs.Version), group, strconv.FormatBool(cs.DidResume)).Inc()
	return nil
}

// handshakeFailure counts a failed TLS handshake by the kind of err.
func (m *serverMetrics) handshakeFailure(err error) {
	msg := err.Error()
	reason := "other"
	switch {
	case strings.Contains(msg, "i/o timeout") || strings.Contains(msg, "deadline exceeded") || strings.Contains(msg, "context canceled"):
		reason = "timeout"
	case strings.HasSuffix(msg, ": EOF") || strings.Contains(msg, "connection reset"):
		reason = "eof"
	case strings.Contains(msg, "HTTP request to an HTTPS server") || strings.Contains(msg, "does not look like a TLS handshake"):
		reason = "not_tls"
	case strings.Contains(msg, "unsupported versions") || strings.Contains(msg, "protocol version"):
		reason = "version"
	case strings.Contains(msg, "no cipher suite") || strings.Contains(msg, "no mutually supported"):
		reason = "no_shared_cipher"
	case strings.Contains(msg, "remote error"):
		reason = "client_alert" // e.g. the client does not trust our certificate
	case strings.Contains(msg, "certs:") || strings.Contains(msg, "no certificate"):
		reason = "no_certificate"
	}
	m.handshakeFailures.With(reason).Inc()
}
