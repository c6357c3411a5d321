package main

import (
	"time"

	"github.com/httpsd/httpsd/certs"
	"github.com/httpsd/httpsd/metrics"
)

// reloadCounters count config reloads by result.
type reloadCounters struct{ success, failure *metrics.Counter }

// registerMetrics adds the process, Go runtime and certificate series to
// reg and returns the config reload counters.
func registerMetrics(reg *metrics.Registry, d *daemon, logs *logWriter, start time.Time) reloadCounters {
	metrics.RegisterProcess(reg, start)
	reg.Func("httpsd_log_dropped_total", "Log lines dropped because the log output could not keep up.", "counter", nil,
		func(add func(float64, ...string)) { add(float64(logs.Dropped())) })
	reloads := reg.Counter("httpsd_config_reloads_total", "Config reloads on SIGHUP, by result (success, failure).", "result")
	registerCertMetrics(reg, d)
	return reloadCounters{success: reloads.With("success"), failure: reloads.With("failure")}
}

// registerCertMetrics reports the certificates in service when scraped.
func registerCertMetrics(reg *metrics.Registry, d *daemon) {
	reg.Func("httpsd_certificate_not_after_timestamp_seconds", "When each served certificate expires, by name and source.",
		"gauge", []string{"name", "source"}, func(add func(float64, ...string)) {
			src, source := d.certSource()
			for name, notAfter := range notAfterByName(src, source) {
				add(float64(notAfter.Unix()), name, source)
			}
		})
	for _, m := range []struct {
		name, help, typ string
		value           func(certs.HostStats) float64
	}{
		{"httpsd_acme_issued_total", "ACME certificates issued, by host.", "counter",
			func(st certs.HostStats) float64 { return float64(st.Issued) }},
		{"httpsd_acme_renewed_total", "ACME certificates renewed, by host.", "counter",
			func(st certs.HostStats) float64 { return float64(st.Renewed) }},
		{"httpsd_acme_failures_total", "Failed attempts to obtain an ACME certificate, by host.", "counter",
			func(st certs.HostStats) float64 { return float64(st.Failures) }},
		{"httpsd_acme_last_failure_timestamp_seconds", "When the last ACME attempt failed, by host; 0 if none has.", "gauge",
			func(st certs.HostStats) float64 {
				if st.LastFailure.IsZero() {
					return 0
				}
				return float64(st.LastFailure.Unix())
			}},
	} {
		reg.Func(m.name, m.help, m.typ, []string{"host"}, func(add func(float64, ...string)) {
			src, _ := d.certSource()
			for _, st := range acmeStats(src) {
				add(m.value(st), st.Host)
			}
		})
	}
}

// notAfterByName gives, for each name a served certificate covers, when
// the first of them to expire does: two files may cover one name.
func notAfterByName(src *certSource, source string) map[string]time.Time {
	out := map[string]time.Time{}
	keep := func(name string, t time.Time) {
		if old, ok := out[name]; !ok || t.Before(old) {
			out[name] = t
		}
	}
	if src == nil {
		return out
	}
	if set := src.set.Load(); set != nil {
		for _, leaf := range set.Leaves() {
			for _, name := range certs.NewInfo(source, "", leaf).Names {
				keep(name, leaf.NotAfter)
			}
		}
	}
	for _, st := range acmeStats(src) {
		if st.Leaf != nil {
			keep(st.Host, st.Leaf.NotAfter)
		}
	}
	return out
}

func (d *daemon) certSource() (*certSource, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.src, d.cfg.TLS.Source
}

func acmeStats(src *certSource) []certs.HostStats {
	if src == nil || src.acme == nil {
		return nil
	}
	return src.acme.Stats()
}
