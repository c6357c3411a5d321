package metrics

import (
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// RegisterProcess adds Go runtime and process series to reg. Where
// Prometheus's client_golang has the same series it has the same name
// (go_goroutines, process_resident_memory_bytes, ...); it has more, such as
// go_gc_duration_seconds and go_threads, which are not served. start
// stands for the process's start time where /proc cannot tell it.
func RegisterProcess(reg *Registry, start time.Time) {
	if t, ok := procStart(); ok {
		start = t
	}
	reg.Func("go_info", "Information about the Go environment.", "gauge", []string{"version"},
		func(add func(float64, ...string)) { add(1, runtime.Version()) })
	for _, m := range []struct{ name, help, typ, key string }{
		{"go_goroutines", "Number of goroutines that currently exist.", "gauge", "/sched/goroutines:goroutines"},
		{"go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting.", "gauge", "/sched/gomaxprocs:threads"},
		{"go_gc_cycles_total", "Completed GC cycles.", "counter", "/gc/cycles/total:gc-cycles"},
		{"go_gc_gogc_percent", "Heap size target percentage (GOGC).", "gauge", "/gc/gogc:percent"},
		{"go_gc_gomemlimit_bytes", "Go runtime memory limit (GOMEMLIMIT).", "gauge", "/gc/gomemlimit:bytes"},
		{"go_gc_heap_goal_bytes", "Heap size target for the end of the GC cycle.", "gauge", "/gc/heap/goal:bytes"},
		{"go_memstats_heap_alloc_bytes", "Heap bytes allocated and in use, live or not yet swept.", "gauge", "/memory/classes/heap/objects:bytes"},
		{"go_memstats_alloc_bytes_total", "Heap bytes allocated in all.", "counter", "/gc/heap/allocs:bytes"},
		{"go_memstats_sys_bytes", "Bytes of memory obtained from the OS.", "gauge", "/memory/classes/total:bytes"},
		{"go_memstats_stack_inuse_bytes", "Bytes in goroutine stacks.", "gauge", "/memory/classes/heap/stacks:bytes"},
	} {
		reg.Func(m.name, m.help, m.typ, nil, func(add func(float64, ...string)) {
			s := []rtmetrics.Sample{{Name: m.key}}
			rtmetrics.Read(s)
			switch s[0].Value.Kind() {
			case rtmetrics.KindUint64:
				add(float64(s[0].Value.Uint64()))
			case rtmetrics.KindFloat64:
				add(s[0].Value.Float64())
			}
		})
	}
	reg.Func("process_start_time_seconds", "Start time of the process since the Unix epoch in seconds.", "gauge", nil,
		func(add func(float64, ...string)) { add(float64(start.UnixNano()) / 1e9) })
	reg.Func("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", nil,
		func(add func(float64, ...string)) {
			if d, ok := cpuTime(); ok {
				add(d.Seconds())
			}
		})
	reg.Func("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", nil,
		func(add func(float64, ...string)) {
			if _, rss, ok := statm(); ok {
				add(rss)
			}
		})
	reg.Func("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", nil,
		func(add func(float64, ...string)) {
			if vsz, _, ok := statm(); ok {
				add(vsz)
			}
		})
	reg.Func("process_open_fds", "Number of open file descriptors.", "gauge", nil,
		func(add func(float64, ...string)) {
			if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
				add(float64(len(fds)))
			}
		})
	reg.Func("process_max_fds", "Maximum number of open file descriptors.", "gauge", nil,
		func(add func(float64, ...string)) {
			if n, ok := maxFDs(); ok {
				add(float64(n))
			}
		})
}

// procStart returns when this process started, from /proc: the start
// field of /proc/self/stat, in clock ticks after boot (100 a second on
// Linux), plus the boot time in /proc/stat.
func procStart() (time.Time, bool) {
	stat, err1 := os.ReadFile("/proc/self/stat")
	sys, err2 := os.ReadFile("/proc/stat")
	if err1 != nil || err2 != nil {
		return time.Time{}, false
	}
	// The command name, in parentheses, may hold spaces: count from after it.
	_, rest, ok := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64) // field 22 of stat; rest starts at field 3
	if err != nil {
		return time.Time{}, false
	}
	for line := range strings.Lines(string(sys)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(boot, 0).Add(time.Duration(ticks) * time.Second / 100), true
		}
	}
	return time.Time{}, false
}

// statm returns the virtual and resident size of this process in bytes,
// from /proc/self/statm; ok is false where there is no /proc.
func statm() (vsz, rss float64, ok bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, 0, false
	}
	pages, err1 := strconv.ParseUint(f[0], 10, 64)
	res, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	page := float64(os.Getpagesize())
	return float64(pages) * page, float64(res) * page, true
}
