package server

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"
)

// TestTextAccessLogMatchesSlog checks that the fast access log writes what
// the slog path writes, quoting included, but for the time.
func TestTextAccessLogMatchesSlog(t *testing.T) {
	stamp := regexp.MustCompile(`^time=\S+ `)
	for _, target := range []string{"/hello/world", "/hello/a%20b", "/hello/%22q%22=x", "/hello/%C3%A9%C2%A0", "/hello/%01"} {
		var fast, slow bytes.Buffer
		for _, s := range []*Server{
			New(Options{Hosts: []string{"localhost"}, AccessLog: true, AccessLogText: &fast}),
			New(Options{Hosts: []string{"localhost"}, AccessLog: true, Logger: slog.New(slog.NewTextHandler(&slow, nil))}),
		} {
			r := httptest.NewRequest("GET", "https://localhost"+target, nil)
			r.TLS.Version = tls.VersionTLS13
			s.logRequest(r, 200, 19, 1234567*time.Nanosecond)
		}
		got, want := stamp.ReplaceAllString(fast.String(), ""), stamp.ReplaceAllString(slow.String(), "")
		if got != want || !stamp.MatchString(fast.String()) {
			t.Errorf("access line for %s =\n%s\nwant (as slog writes it)\n%s", target, fast.String(), slow.String())
		}
	}
	var quiet bytes.Buffer
	s := New(Options{Hosts: []string{"localhost"}, AccessLog: true, AccessLogText: &quiet, AccessLogLevel: slog.LevelWarn})
	s.logRequest(httptest.NewRequest("GET", "https://localhost/", nil), 200, 0, 0)
	if quiet.Len() != 0 {
		t.Errorf("access line written at level warn: %q", quiet.String())
	}
}

func TestAccessLogTime(t *testing.T) {
	a := newTextAccessLog(nil, nil)
	base := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	for _, tt := range []time.Time{
		base,
		base.Add(999 * time.Millisecond),
		base.Add(999*time.Millisecond + 999999*time.Nanosecond),
		base.Add(time.Second), // next day
		base.Add(1001 * time.Millisecond),
		base.In(time.FixedZone("X", 5*3600+1800)).Add(42 * time.Millisecond),
		base.Add(43 * time.Millisecond), // the same second in another zone
		base.Add(-time.Hour),            // back in time: the cache is per second, not monotonic
	} {
		want := tt.Format("2006-01-02T15:04:05.000Z07:00")
		if got := string(a.appendTime(nil, tt)); got != want {
			t.Errorf("appendTime(%v) = %s, want %s", tt, got, want)
		}
	}
}
