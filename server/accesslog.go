package server

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// fastAccessLog writes access lines exactly as slog's TextHandler or
// JSONHandler formats them, but without a slog.Record per request
// (runtime.Callers, attribute copies): a line costs a fraction of slog's
// time. Lines are written with one Write each.
type fastAccessLog struct {
	w     io.Writer
	json  bool         // JSONHandler's format, else TextHandler's
	level slog.Leveler // lines are written when this allows info
	bufs  sync.Pool
	stamp atomic.Pointer[stamp] // the current second, formatted
}

// stamp is one second of time formatted as slog does, split around the
// fraction of the second: formatting only that per line halves the cost
// of the time field.
type stamp struct {
	sec        int64
	loc        *time.Location
	secs, zone []byte // "2006-01-02T15:04:05" and "Z07:00"
}

func newFastAccessLog(w io.Writer, json bool, level slog.Leveler) *fastAccessLog {
	if level == nil {
		level = slog.LevelInfo
	}
	return &fastAccessLog{w: w, json: json, level: level,
		bufs: sync.Pool{New: func() any { b := make([]byte, 0, 320); return &b }}}
}

// appendTime appends t as slog does: "2006-01-02T15:04:05.000Z07:00" in
// text, time.RFC3339Nano in JSON.
func (a *fastAccessLog) appendTime(b []byte, t time.Time) []byte {
	st := a.stamp.Load()
	if st == nil || st.sec != t.Unix() || st.loc != t.Location() {
		st = &stamp{sec: t.Unix(), loc: t.Location(), secs: t.AppendFormat(nil, "2006-01-02T15:04:05"), zone: t.AppendFormat(nil, "Z07:00")}
		a.stamp.Store(st)
	}
	b = append(b, st.secs...)
	if ns := t.Nanosecond(); !a.json {
		ms := ns / 1e6
		b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	} else if ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, st.zone...)
}

func (a *fastAccessLog) log(r *http.Request, e logEntry) {
	if a.level.Level() > slog.LevelInfo {
		return
	}
	tlsVersion := ""
	if r.TLS != nil {
		tlsVersion = tls.VersionName(r.TLS.Version)
	}
	bp := a.bufs.Get().(*[]byte)
	var b []byte
	if a.json {
		b = a.appendJSON((*bp)[:0], r, e, tlsVersion)
	} else {
		b = a.appendText((*bp)[:0], r, e, tlsVersion)
	}
	a.w.Write(b)
	*bp = b
	a.bufs.Put(bp)
}

func (a *fastAccessLog) appendText(b []byte, r *http.Request, e logEntry, tlsVersion string) []byte {
	b = append(b, "time="...)
	b = a.appendTime(b, time.Now())
	b = append(b, " level=INFO msg=request method="...)
	b = appendText(b, r.Method)
	b = append(b, " host="...)
	b = appendText(b, r.Host)
	b = append(b, " path="...)
	b = appendText(b, r.URL.Path)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, " bytes="...)
	b = strconv.AppendInt(b, e.bytes, 10)
	b = append(b, " duration="...)
	b = append(b, e.elapsed.String()...)
	b = append(b, " remote="...)
	b = appendText(b, e.remote)
	b = append(b, " proto="...)
	b = appendText(b, r.Proto)
	b = append(b, " tls="...)
	b = appendText(b, tlsVersion)
	if e.upstream != "" {
		b = append(b, " upstream="...)
		b = appendText(b, e.upstream)
		b = append(b, " upstream_duration="...)
		b = append(b, e.upstreamTime.String()...)
	}
	return append(b, '\n')
}

func (a *fastAccessLog) appendJSON(b []byte, r *http.Request, e logEntry, tlsVersion string) []byte {
	b = append(b, `{"time":"`...)
	b = a.appendTime(b, time.Now())
	b = append(b, `","level":"INFO","msg":"request","method":"`...)
	b = appendJSONString(b, r.Method)
	b = append(b, `","host":"`...)
	b = appendJSONString(b, r.Host)
	b = append(b, `","path":"`...)
	b = appendJSONString(b, r.URL.Path)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.bytes, 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(e.elapsed), 10)
	b = append(b, `,"remote":"`...)
	b = appendJSONString(b, e.remote)
	b = append(b, `","proto":"`...)
	b = appendJSONString(b, r.Proto)
	b = append(b, `","tls":"`...)
	b = appendJSONString(b, tlsVersion)
	if e.upstream != "" {
		b = append(b, `","upstream":"`...)
		b = appendJSONString(b, e.upstream)
		b = append(b, `","upstream_duration":`...)
		b = strconv.AppendInt(b, int64(e.upstreamTime), 10)
		return append(b, "}\n"...)
	}
	return append(b, "\"}\n"...)
}

// appendJSONString appends s escaped as slog.JSONHandler escapes it:
// quotes, backslashes and control characters, invalid UTF-8 as U+FFFD, and
// U+2028 and U+2029.
func appendJSONString(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= ' ' && c < utf8.RuneSelf && c != '"' && c != '\\' {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), `\u202`...)
			b = append(b, hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

const hexDigits = "0123456789abcdef"

// appendText appends s quoted as slog.TextHandler quotes a value: when it
// is empty or has a space, '=', '"', a control or non-printing character.
func appendText(b []byte, s string) []byte {
	if !needsQuoting(s) {
		return append(b, s...)
	}
	return strconv.AppendQuote(b, s)
}

func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '=' || c == '"' || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || !strconv.IsPrint(r) || r == '\u00a0' {
			return true
		}
		i += size
	}
	return false
}
