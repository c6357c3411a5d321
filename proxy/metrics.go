package proxy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/httpsd/httpsd/metrics"
)

// Metrics are the upstream series, shared by every Proxy that records
// into one registry: register them once with NewMetrics.
type Metrics struct {
	requests metrics.CounterVec   // upstream, code
	errors   metrics.CounterVec   // upstream, kind
	duration metrics.HistogramVec // upstream

	mu    sync.Mutex
	live  map[*Proxy]bool
	stats map[string]*upstreamStats
}

// NewMetrics registers the upstream series in reg:
// httpsd_upstream_requests_total{upstream,code},
// httpsd_upstream_errors_total{upstream,kind} (connect, timeout, reset,
// other), httpsd_upstream_response_seconds{upstream} (time to the
// response headers) and httpsd_upstream_healthy{upstream} (1 when the
// upstream may get traffic).
func NewMetrics(reg *metrics.Registry) *Metrics {
	m := &Metrics{
		requests: reg.Counter("httpsd_upstream_requests_total", "Requests answered by upstreams, by upstream and status code.", "upstream", "code"),
		errors: reg.Counter("httpsd_upstream_errors_total",
			"Requests that failed to reach an upstream or get its answer, by upstream and kind (connect, timeout, reset, other).", "upstream", "kind"),
		duration: reg.Histogram("httpsd_upstream_response_seconds", "Time from sending a request to an upstream to its response headers.",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}, "upstream"),
		live:  map[*Proxy]bool{},
		stats: map[string]*upstreamStats{},
	}
	reg.Func("httpsd_upstream_healthy", "Whether an upstream may get traffic (1) or is skipped after failures or failed health checks (0).",
		"gauge", []string{"upstream"}, m.reportHealth)
	return m
}

func (m *Metrics) add(p *Proxy) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live[p] = true
}

func (m *Metrics) remove(p *Proxy) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.live, p)
}

// reportHealth gives each upstream of the proxies in service once: healthy
// when every proxy using it finds it usable.
func (m *Metrics) reportHealth(add func(float64, ...string)) {
	m.mu.Lock()
	healthy := map[string]bool{}
	now := time.Now()
	for p := range m.live {
		for _, u := range p.ups {
			ok, seen := healthy[u.name]
			healthy[u.name] = u.usable(now) && (ok || !seen)
		}
	}
	m.mu.Unlock()
	for name, ok := range healthy {
		v := 0.0
		if ok {
			v = 1
		}
		add(v, name)
	}
}

// upstreamStats are one upstream's series, resolved once: looking series
// up by label values on every request would allocate.
type upstreamStats struct {
	m        *Metrics
	name     string
	duration *metrics.Histogram
	codes    [500]atomic.Pointer[metrics.Counter]
	kinds    map[string]*metrics.Counter
}

func (m *Metrics) upstream(name string) *upstreamStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.stats[name]; s != nil {
		return s
	}
	s := &upstreamStats{m: m, name: name, duration: m.duration.With(name), kinds: map[string]*metrics.Counter{}}
	for _, k := range []string{"connect", "timeout", "reset", "other"} {
		s.kinds[k] = m.errors.With(name, k)
	}
	m.stats[name] = s
	return s
}

// answered records a response from u.
func (u *upstream) answered(code int, d time.Duration) {
	s := u.stats
	if s == nil {
		return
	}
	s.duration.Observe(d)
	if code < 100 || code >= 600 {
		s.m.requests.With(s.name, strconv.Itoa(code)).Inc()
		return
	}
	slot := &s.codes[code-100]
	c := slot.Load()
	if c == nil {
		c = s.m.requests.With(s.name, strconv.Itoa(code))
		slot.Store(c)
	}
	c.Inc()
}

// errored records an error of kind reaching u.
func (u *upstream) errored(kind string) {
	if u.stats != nil {
		u.stats.kinds[kind].Inc()
	}
}
