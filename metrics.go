package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"httpsd/certs"
)

// registerMetrics adds the process, Go runtime and certificate series to
// reg and returns the config reload counter.
func registerMetrics(reg *prometheus.Registry, d *daemon) *prometheus.CounterVec {
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "httpsd_config_reloads_total", Help: "Config reloads on SIGHUP, by result (success, failure).",
	}, []string{"result"})
	reloads.WithLabelValues("success")
	reloads.WithLabelValues("failure")
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		reloads,
		certCollector{d},
	)
	return reloads
}

var (
	notAfterDesc = prometheus.NewDesc("httpsd_certificate_not_after_timestamp_seconds",
		"When each served certificate expires, by name and source.", []string{"name", "source"}, nil)
	acmeIssuedDesc = prometheus.NewDesc("httpsd_acme_issued_total",
		"ACME certificates issued, by host.", []string{"host"}, nil)
	acmeRenewedDesc = prometheus.NewDesc("httpsd_acme_renewed_total",
		"ACME certificates renewed, by host.", []string{"host"}, nil)
	acmeFailuresDesc = prometheus.NewDesc("httpsd_acme_failures_total",
		"Failed attempts to obtain an ACME certificate, by host.", []string{"host"}, nil)
	acmeLastFailureDesc = prometheus.NewDesc("httpsd_acme_last_failure_timestamp_seconds",
		"When the last ACME attempt failed, by host; 0 if none has.", []string{"host"}, nil)
)

// certCollector reports the certificates in service when scraped.
type certCollector struct{ d *daemon }

func (c certCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{notAfterDesc, acmeIssuedDesc, acmeRenewedDesc, acmeFailuresDesc, acmeLastFailureDesc} {
		ch <- d
	}
}

func (c certCollector) Collect(ch chan<- prometheus.Metric) {
	c.d.mu.Lock()
	src, source := c.d.src, c.d.cfg.TLS.Source
	c.d.mu.Unlock()
	if src == nil {
		return
	}
	if set := src.set.Load(); set != nil {
		for _, leaf := range set.Leaves() {
			for _, name := range certs.NewInfo(source, "", leaf).Names {
				ch <- prometheus.MustNewConstMetric(notAfterDesc, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()), name, source)
			}
		}
	}
	if src.acme == nil {
		return
	}
	for _, st := range src.acme.Stats() {
		if st.Leaf != nil {
			ch <- prometheus.MustNewConstMetric(notAfterDesc, prometheus.GaugeValue, float64(st.Leaf.NotAfter.Unix()), st.Host, source)
		}
		ch <- prometheus.MustNewConstMetric(acmeIssuedDesc, prometheus.CounterValue, float64(st.Issued), st.Host)
		ch <- prometheus.MustNewConstMetric(acmeRenewedDesc, prometheus.CounterValue, float64(st.Renewed), st.Host)
		ch <- prometheus.MustNewConstMetric(acmeFailuresDesc, prometheus.CounterValue, float64(st.Failures), st.Host)
		last := 0.0
		if !st.LastFailure.IsZero() {
			last = float64(st.LastFailure.Unix())
		}
		ch <- prometheus.MustNewConstMetric(acmeLastFailureDesc, prometheus.GaugeValue, last, st.Host)
	}
}
