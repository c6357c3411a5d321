package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"
)

// TestFastAccessLogMatchesSlog checks that the fast access log writes what
// slog's text and JSON handlers write, quoting and escaping included, but
// for the time.
func TestFastAccessLogMatchesSlog(t *testing.T) {
	stamps := map[bool]*regexp.Regexp{false: regexp.MustCompile(`(?m)^time=\S+ `), true: regexp.MustCompile(`(?m)^\{"time":"[^"]+",`)}
	for _, json := range []bool{false, true} {
		for _, target := range []string{"/hello/world", "/hello/a%20b", "/hello/%22q%22=x", "/hello/%C3%A9%C2%A0",
			"/hello/%01", "/hello/%09%0A%0D", "/hello/a%5Cb", "/hello/%3Cb%3E&", "/hello/%E2%80%A8%E2%80%A9", "/hello/%FF%FE", "/"} {
			t.Run(fmt.Sprintf("json=%v %s", json, target), func(t *testing.T) {
				var fast, slow bytes.Buffer
				var h slog.Handler = slog.NewTextHandler(&slow, nil)
				if json {
					h = slog.NewJSONHandler(&slow, nil)
				}
				for _, s := range []*Server{
					New(Options{Hosts: []string{"localhost"}, AccessLog: true, AccessLogWriter: &fast, AccessLogJSON: json}),
					New(Options{Hosts: []string{"localhost"}, AccessLog: true, Logger: slog.New(h)}),
				} {
					r := httptest.NewRequest("GET", "https://localhost"+target, nil)
					r.TLS.Version = tls.VersionTLS13
					if target == "/" {
						r.TLS = nil // a plain-HTTP line: tls is empty
					}
					s.logRequest(r, logEntry{status: 200, bytes: 19, elapsed: 1234567 * time.Nanosecond, remote: r.RemoteAddr})
					s.logRequest(r, logEntry{status: 502, elapsed: time.Second, remote: "[2001:db8::1]:0",
						upstream: "unix:/run/a b.sock", upstreamTime: 987654 * time.Nanosecond})
				}
				stamp := stamps[json]
				got, want := stamp.ReplaceAllString(fast.String(), ""), stamp.ReplaceAllString(slow.String(), "")
				if got != want || !stamp.MatchString(fast.String()) {
					t.Errorf("access line =\n%s\nwant (as slog writes it)\n%s", fast.String(), slow.String())
				}
			})
		}
	}
	var quiet bytes.Buffer
	s := New(Options{Hosts: []string{"localhost"}, AccessLog: true, AccessLogWriter: &quiet, AccessLogLevel: slog.LevelWarn})
	s.logRequest(httptest.NewRequest("GET", "https://localhost/", nil), logEntry{status: 200})
	if quiet.Len() != 0 {
		t.Errorf("access line written at level warn: %q", quiet.String())
	}
}

func TestAccessLogTime(t *testing.T) {
	base := time.Date(2026, 11, 30, 23, 59, 59, 0, time.UTC)
	times := []time.Time{
		base,
		base.Add(999 * time.Millisecond),
		base.Add(999*time.Millisecond + 999999*time.Nanosecond),
		base.Add(time.Second), // next day
		base.Add(1001 * time.Millisecond),
		base.Add(1*time.Second + 120*time.Millisecond),
		base.Add(1*time.Second + 500*time.Nanosecond),
		base.In(time.FixedZone("X", 5*3600+1800)).Add(42 * time.Millisecond),
		base.Add(43 * time.Millisecond), // the same second in another zone
		base.Add(-time.Hour),            // back in time: the cache is per second, not monotonic
	}
	for _, json := range []bool{false, true} {
		a := newFastAccessLog(nil, json, nil)
		layout := "2006-01-02T15:04:05.000Z07:00" // slog.TextHandler's
		if json {
			layout = time.RFC3339Nano // slog.JSONHandler's
		}
		for _, tt := range times {
			want := tt.Format(layout)
			if got := string(a.appendTime(nil, tt)); got != want {
				t.Errorf("appendTime(%v) json=%v = %s, want %s", tt, json, got, want)
			}
		}
	}
}
