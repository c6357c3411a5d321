package metrics

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// gather parses what reg writes with Prometheus's own text parser.
func gather(t *testing.T, reg *Registry) map[string]*dto.MetricFamily {
	t.Helper()
	var b strings.Builder
	if _, err := reg.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("Prometheus cannot parse /metrics: %v\n%s", err, b.String())
	}
	// The parser lets one series appear twice; Prometheus would keep one.
	for name, mf := range mfs {
		seen := map[string]bool{}
		for _, m := range mf.GetMetric() {
			key := fmt.Sprint(m.GetLabel())
			if seen[key] {
				t.Errorf("/metrics has %s%s twice", name, key)
			}
			seen[key] = true
		}
	}
	return mfs
}

// counterValue returns the value of the series name{labels} as Prometheus's
// parser reads it from reg's output, or -1; it also checks that
// Registry.Value agrees.
func counterValue(t *testing.T, reg *Registry, name string, labels map[string]string) float64 {
	t.Helper()
	got := -1.0
	if mf, ok := gather(t, reg)[name]; ok {
	find:
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				switch {
				case m.GetCounter() != nil:
					got = m.GetCounter().GetValue()
				case m.GetGauge() != nil:
					got = m.GetGauge().GetValue()
				default:
					got = float64(m.GetHistogram().GetSampleCount())
				}
				break find
			}
		}
	}
	if v, ok := reg.Value(name, labels); !ok && got != -1 || ok && v != got {
		t.Errorf("Value(%s, %v) = %v, %v; the text output says %v", name, labels, v, ok, got)
	}
	return got
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

func TestRegistryText(t *testing.T) {
	reg := new(Registry)
	c := reg.Counter("t_requests_total", "Requests,\nby \\ route.", "route", "code")
	c.With("/a", "200").Inc()
	c.With("/a", "200").Inc()
	c.With(`q"\`+"\n", "500").Inc()
	g := reg.Gauge("t_in_flight", "In flight.")
	g.Inc()
	g.Inc()
	g.Dec()
	h := reg.Histogram("t_seconds", "Durations.", []float64{0.001, 0.5}, "route")
	h.With("/a").Observe(500 * time.Microsecond)
	h.With("/a").Observe(time.Millisecond) // on the bound: le is inclusive
	h.With("/a").Observe(2 * time.Second)
	reg.Func("t_func", "Computed.", "gauge", []string{"name"}, func(add func(float64, ...string)) {
		add(1.5, "x")
		add(math.Inf(1), "y")
		add(9, "z", "extra") // the wrong number of values: left out
	})

	var b strings.Builder
	reg.WriteTo(&b)
	want := `# HELP t_func Computed.
# TYPE t_func gauge
t_func{name="x"} 1.5
t_func{name="y"} +Inf
# HELP t_in_flight In flight.
# TYPE t_in_flight gauge
t_in_flight 1
# HELP t_requests_total Requests,\nby \\ route.
# TYPE t_requests_total counter
t_requests_total{code="200",route="/a"} 2
t_requests_total{code="500",route="q\"\\\n"} 1
# HELP t_seconds Durations.
# TYPE t_seconds histogram
t_seconds_bucket{route="/a",le="0.001"} 2
t_seconds_bucket{route="/a",le="0.5"} 2
t_seconds_bucket{route="/a",le="+Inf"} 3
t_seconds_sum{route="/a"} 2.0015
t_seconds_count{route="/a"} 3
`
	if b.String() != want {
		t.Errorf("WriteTo =\n%s\nwant\n%s", b.String(), want)
	}

	mfs := gather(t, reg)
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"t_requests_total", map[string]string{"route": "/a", "code": "200"}, 2},
		{"t_requests_total", map[string]string{"route": "q\"\\\n"}, 1},
		{"t_in_flight", nil, 1},
		{"t_seconds", map[string]string{"route": "/a"}, 3},
		{"t_func", map[string]string{"name": "x"}, 1.5},
	} {
		t.Run(fmt.Sprint(tt.name, tt.labels), func(t *testing.T) {
			if got := counterValue(t, reg, tt.name, tt.labels); got != tt.want {
				t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
			}
		})
	}
	if got := mfs["t_seconds"].GetMetric()[0].GetHistogram().GetSampleSum(); got != 2.0015 {
		t.Errorf("t_seconds_sum = %v, want 2.0015", got)
	}
}

func TestRegistryServeHTTP(t *testing.T) {
	reg := new(Registry)
	RegisterProcess(reg, time.Now())
	rec := httptest.NewRecorder()
	reg.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if rec.Code != http.StatusOK {
		t.Errorf("GET /metrics = %d, want 200", rec.Code)
	}
	mfs := gather(t, reg)
	for _, name := range []string{"go_info", "go_goroutines", "go_sched_gomaxprocs_threads", "go_gc_cycles_total",
		"go_gc_gogc_percent", "go_gc_gomemlimit_bytes", "go_gc_heap_goal_bytes", "go_memstats_heap_alloc_bytes",
		"go_memstats_alloc_bytes_total", "go_memstats_sys_bytes", "go_memstats_stack_inuse_bytes",
		"process_resident_memory_bytes", "process_virtual_memory_bytes", "process_cpu_seconds_total",
		"process_open_fds", "process_max_fds", "process_start_time_seconds"} {
		mf, ok := mfs[name]
		if !ok || len(mf.GetMetric()) != 1 {
			t.Errorf("/metrics lacks %s", name)
			continue
		}
		m := mf.GetMetric()[0]
		if v := m.GetGauge().GetValue() + m.GetCounter().GetValue(); v <= 0 && name != "go_gc_cycles_total" {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	// The kernel's start time of this test process: before now, and not
	// long before, since a test binary runs for seconds.
	start := mfs["process_start_time_seconds"].GetMetric()[0].GetGauge().GetValue()
	if age := time.Since(time.Unix(int64(start), 0)); age < -time.Second || age > 10*time.Minute {
		t.Errorf("process_start_time_seconds = %v, %v ago", start, age)
	}
}

// TestRegistryConcurrent updates, registers and scrapes at once; run with
// -race.
func TestRegistryConcurrent(t *testing.T) {
	reg := new(Registry)
	c := reg.Counter("c_total", "C.", "k")
	h := reg.Histogram("h_seconds", "H.", []float64{0.01}, "k")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 1000 {
				k := strconv.Itoa(j % 7)
				c.With(k).Inc()
				h.With(k).Observe(time.Duration(j) * time.Microsecond)
			}
		})
		wg.Go(func() {
			reg.Func("f"+strconv.Itoa(i), "F.", "gauge", nil, func(add func(float64, ...string)) { add(1) })
			for range 20 {
				reg.WriteTo(io.Discard)
			}
		})
	}
	wg.Wait()
	if got := counterValue(t, reg, "h_seconds", map[string]string{"k": "0"}); got != 4*143 {
		t.Errorf("h_seconds_count{k=0} = %v, want %d", got, 4*143)
	}
	var total float64
	for k := range 7 {
		total += counterValue(t, reg, "c_total", map[string]string{"k": strconv.Itoa(k)})
	}
	if total != 4000 {
		t.Errorf("sum of c_total = %v, want 4000", total)
	}
}

func TestRegistryMisuse(t *testing.T) {
	for _, tt := range []struct {
		name string
		f    func(*Registry)
	}{
		{"twice", func(r *Registry) { r.Counter("a", "a"); r.Counter("a", "a") }},
		{"label count", func(r *Registry) { r.Counter("a", "a", "x").With("1", "2") }},
		{"func type", func(r *Registry) { r.Func("a", "a", "histogram", nil, nil) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", tt.name)
				}
			}()
			tt.f(new(Registry))
		})
	}
}
