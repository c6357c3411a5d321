package metrics

import (
	"bufio"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Registry holds metric families and writes them in Prometheus's text
// exposition format (version 0.0.4). The zero value is an empty registry,
// ready to use. It replaces client_golang, whose registry, protobuf and
// runtime collectors cost about 2 MiB of memory in a process this small.
type Registry struct {
	mu       sync.Mutex
	families map[string]*family
}

// family is one metric name: its series by label values, or a function
// that reports them at each scrape.
type family struct {
	name, help, typ string
	labels          []string // in the order series values are given
	order           []int    // labels' indexes in name order, for output
	buckets         []float64

	mu     sync.Mutex
	series map[string]series // by label values joined with \xff
	report func(add func(v float64, values ...string))
}

// series is one set of label values and its *Counter, *Gauge or *Histogram.
type series struct {
	values []string
	metric any
}

// Counter is a count that only goes up. Its zero value is 0.
type Counter struct{ n atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.n.Add(1) }

// Value returns the count.
func (c *Counter) Value() uint64 { return c.n.Load() }

// Gauge is a value that goes up and down. Its zero value is 0.
type Gauge struct{ n atomic.Int64 }

// Inc adds one.
func (g *Gauge) Inc() { g.n.Add(1) }

// Dec subtracts one.
func (g *Gauge) Dec() { g.n.Add(-1) }

// Histogram counts durations into buckets of seconds. Make one with
// HistogramVec.With; the zero value has no buckets and must not be used.
type Histogram struct {
	bounds []float64       // upper bounds in seconds, ascending
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Int64    // nanoseconds
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(h.bounds) && s > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// CounterVec is a counter family with labels, made by Registry.Counter;
// the zero value must not be used.
type CounterVec struct{ f *family }

// With returns the counter for the label values, in the order the family
// was registered with, making it on first use.
func (v CounterVec) With(values ...string) *Counter {
	return v.f.get(values, func() any { return new(Counter) }).(*Counter)
}

// HistogramVec is a histogram family with labels, made by
// Registry.Histogram; the zero value must not be used.
type HistogramVec struct{ f *family }

// With returns the histogram for the label values, making it on first use.
func (v HistogramVec) With(values ...string) *Histogram {
	return v.f.get(values, func() any {
		return &Histogram{bounds: v.f.buckets, counts: make([]atomic.Uint64, len(v.f.buckets)+1)}
	}).(*Histogram)
}

// Counter registers a counter family named name with the given labels.
// Registering a name twice, in any of the methods, panics.
func (r *Registry) Counter(name, help string, labels ...string) CounterVec {
	return CounterVec{r.add(&family{name: name, help: help, typ: "counter", labels: labels})}
}

// Gauge registers a gauge without labels.
func (r *Registry) Gauge(name, help string) *Gauge {
	f := r.add(&family{name: name, help: help, typ: "gauge"})
	return f.get(nil, func() any { return new(Gauge) }).(*Gauge)
}

// Histogram registers a histogram family of durations with buckets in
// seconds, ascending.
func (r *Registry) Histogram(name, help string, buckets []float64, labels ...string) HistogramVec {
	return HistogramVec{r.add(&family{name: name, help: help, typ: "histogram", labels: labels, buckets: buckets})}
}

// Func registers a family, of type "counter" or "gauge" (others panic),
// whose series report gives at each scrape by calling add once per series;
// a series with the wrong number of label values is left out, and report
// must not give the same label values twice.
func (r *Registry) Func(name, help, typ string, labels []string, report func(add func(v float64, values ...string))) {
	if typ != "counter" && typ != "gauge" {
		panic("metrics: metric " + name + " has type " + typ + ", want counter or gauge")
	}
	r.add(&family{name: name, help: help, typ: typ, labels: labels, report: report})
}

// add completes f and makes it visible to scrapes; a name registered twice
// panics.
func (r *Registry) add(f *family) *family {
	f.order = make([]int, len(f.labels))
	for i := range f.order {
		f.order[i] = i
	}
	slices.SortFunc(f.order, func(a, b int) int { return strings.Compare(f.labels[a], f.labels[b]) })
	f.series = map[string]series{}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.families == nil {
		r.families = map[string]*family{}
	}
	if _, dup := r.families[f.name]; dup {
		panic("metrics: metric " + f.name + " registered twice")
	}
	r.families[f.name] = f
	return f
}

func (f *family) get(values []string, newSeries func() any) any {
	if len(values) != len(f.labels) {
		panic("metrics: metric " + f.name + " takes " + strconv.Itoa(len(f.labels)) + " label values")
	}
	key := strings.Join(values, "\xff")
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.series[key]
	if !ok {
		s = series{values: slices.Clone(values), metric: newSeries()}
		f.series[key] = s
	}
	return s.metric
}

// ServeHTTP writes every family, sorted by name.
func (r *Registry) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	r.WriteTo(w)
}

// WriteTo writes every family in the text format, sorted by name.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	fams := make([]*family, 0, len(r.families))
	for _, f := range r.families {
		fams = append(fams, f)
	}
	r.mu.Unlock()
	slices.SortFunc(fams, func(a, b *family) int { return strings.Compare(a.name, b.name) })
	cw := &countWriter{w: w}
	bw := bufio.NewWriter(cw)
	for _, f := range fams {
		f.write(bw)
	}
	err := bw.Flush()
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (f *family) write(w *bufio.Writer) {
	w.WriteString("# HELP " + f.name + " " + escapeHelp(f.help) + "\n")
	w.WriteString("# TYPE " + f.name + " " + f.typ + "\n")
	if f.report != nil {
		f.report(func(v float64, values ...string) {
			if len(values) == len(f.labels) {
				f.sample(w, "", values, "", formatFloat(v))
			}
		})
		return
	}
	f.mu.Lock()
	keys := slices.Sorted(maps.Keys(f.series))
	all := make([]series, len(keys))
	for i, k := range keys {
		all[i] = f.series[k]
	}
	f.mu.Unlock()
	for _, s := range all {
		switch m := s.metric.(type) {
		case *Counter:
			f.sample(w, "", s.values, "", strconv.FormatUint(m.Value(), 10))
		case *Gauge:
			f.sample(w, "", s.values, "", strconv.FormatInt(m.n.Load(), 10))
		case *Histogram:
			f.histogram(w, s.values, m)
		}
	}
}

func (f *family) histogram(w *bufio.Writer, values []string, h *Histogram) {
	var total uint64
	for i := range h.counts {
		total += h.counts[i].Load()
		le := "+Inf"
		if i < len(h.bounds) {
			le = formatFloat(h.bounds[i])
		}
		f.sample(w, "_bucket", values, le, strconv.FormatUint(total, 10))
	}
	f.sample(w, "_sum", values, "", formatFloat(time.Duration(h.sum.Load()).Seconds()))
	f.sample(w, "_count", values, "", strconv.FormatUint(total, 10))
}

// sample writes one line: name+suffix, the labels in name order (and le
// when not empty), and the value.
func (f *family) sample(w *bufio.Writer, suffix string, values []string, le, value string) {
	w.WriteString(f.name + suffix)
	if len(f.labels) > 0 || le != "" {
		w.WriteByte('{')
		for n, i := range f.order {
			if n > 0 {
				w.WriteByte(',')
			}
			w.WriteString(f.labels[i] + `="` + escapeLabel(values[i]) + `"`)
		}
		if le != "" {
			if len(f.labels) > 0 {
				w.WriteByte(',')
			}
			w.WriteString(`le="` + le + `"`)
		}
		w.WriteByte('}')
	}
	w.WriteString(" " + value + "\n")
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Value returns the value of the series of family name whose labels
// include labels (all of them when labels is nil): a counter's count, a
// gauge's value, a histogram's number of observations. ok is false when no
// series matches.
func (r *Registry) Value(name string, labels map[string]string) (v float64, ok bool) {
	r.mu.Lock()
	f := r.families[name]
	r.mu.Unlock()
	if f == nil {
		return 0, false
	}
	match := func(values []string) bool {
		n := 0
		for i, l := range f.labels {
			if want, has := labels[l]; has {
				if values[i] != want {
					return false
				}
				n++
			}
		}
		return n == len(labels)
	}
	if f.report != nil {
		f.report(func(fv float64, values ...string) {
			if !ok && len(values) == len(f.labels) && match(values) {
				v, ok = fv, true
			}
		})
		return v, ok
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.series {
		if !match(s.values) {
			continue
		}
		switch m := s.metric.(type) {
		case *Counter:
			return float64(m.Value()), true
		case *Gauge:
			return float64(m.n.Load()), true
		case *Histogram:
			var total uint64
			for i := range m.counts {
				total += m.counts[i].Load()
			}
			return float64(total), true
		}
	}
	return 0, false
}
