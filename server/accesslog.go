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

// textAccessLog writes access lines exactly as slog.TextHandler formats
// them, but without a slog.Record per request (runtime.Callers, attribute
// copies): a line costs a fraction of slog's time. Lines are written with
// one Write each.
type textAccessLog struct {
	w     io.Writer
	level slog.Leveler // lines are written when this allows info
	bufs  sync.Pool
	stamp atomic.Pointer[stamp] // the current second, formatted
}

// stamp is one second of time formatted as slog does, split around the
// milliseconds: formatting only those per line halves the cost of the
// time field.
type stamp struct {
	sec          int64
	loc          *time.Location
	prefix, zone []byte // "2006-01-02T15:04:05." and "Z07:00"
}

// appendTime appends t as "2006-01-02T15:04:05.000Z07:00".
func (a *textAccessLog) appendTime(b []byte, t time.Time) []byte {
	st := a.stamp.Load()
	if st == nil || st.sec != t.Unix() || st.loc != t.Location() {
		st = &stamp{sec: t.Unix(), loc: t.Location(), prefix: t.AppendFormat(nil, "2006-01-02T15:04:05."), zone: t.AppendFormat(nil, "Z07:00")}
		a.stamp.Store(st)
	}
	ms := t.Nanosecond() / 1e6
	b = append(b, st.prefix...)
	b = append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(b, st.zone...)
}

func newTextAccessLog(w io.Writer, level slog.Leveler) *textAccessLog {
	if level == nil {
		level = slog.LevelInfo
	}
	return &textAccessLog{w: w, level: level, bufs: sync.Pool{New: func() any { b := make([]byte, 0, 320); return &b }}}
}

func (a *textAccessLog) log(r *http.Request, status int, n int64, elapsed time.Duration) {
	if a.level.Level() > slog.LevelInfo {
		return
	}
	bp := a.bufs.Get().(*[]byte)
	b := append((*bp)[:0], "time="...)
	b = a.appendTime(b, time.Now())
	b = append(b, " level=INFO msg=request method="...)
	b = appendText(b, r.Method)
	b = append(b, " host="...)
	b = appendText(b, r.Host)
	b = append(b, " path="...)
	b = appendText(b, r.URL.Path)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, " bytes="...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, " duration="...)
	b = append(b, elapsed.String()...)
	b = append(b, " remote="...)
	b = appendText(b, r.RemoteAddr)
	b = append(b, " proto="...)
	b = appendText(b, r.Proto)
	b = append(b, " tls="...)
	if r.TLS != nil {
		b = appendText(b, tls.VersionName(r.TLS.Version))
	} else {
		b = append(b, `""`...)
	}
	b = append(b, '\n')
	a.w.Write(b)
	*bp = b
	a.bufs.Put(bp)
}

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
