package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// recorder is a ResponseWriter that notes the status, body size, route and
// upstream of a request, holds its slots, and keeps a write deadline
// measured from the last progress (see progress).
type recorder struct {
	http.ResponseWriter
	srv    *Server
	status int
	bytes  int64
	route  *routeStats
	client string // the client's address, as limits and the access log see it

	upstream     string // the upstream that answered, for the access log
	upstreamTime time.Duration

	start   time.Time     // when the request arrived
	send    time.Duration // Limits.SendTimeout; 0: none
	total   time.Duration // Limits.WriteTimeout, counted from start; 0: none
	idle    time.Duration // Limits.IdleTimeout, for hijacked connections
	unarmed int           // bytes written since the deadline was last checked
	lastArm time.Time     // when the deadline was last moved

	behind  *[]byte // write-behind buffer (see Write), nil until needed
	through bool    // write through: the response streams or outgrew behind
	mux     bool    // HTTP/2 or HTTP/3: everything up to behindMax is kept behind
	pending bool    // WriteHeader(status) is not passed on yet (see WriteHeader)
	wrote   bool    // something reached the ResponseWriter

	// The slots the request holds, given back by releaseSlots.
	gate    *gate
	perIP   *ipSlots
	slot    *ipSlot
	slotKey netip.Addr

	// The HTTP/2 stream it counts as, given back by closeStream.
	streams    *ipSlots
	streamSlot *ipSlot
	streamKey  netip.Addr
	allStreams *counter
}

// closeStream counts the request's HTTP/2 stream out.
func (rec *recorder) closeStream() {
	if rec.streamSlot != nil {
		rec.streams.release(rec.streamKey, rec.streamSlot)
		rec.streamSlot, rec.streams = nil, nil
	}
	if rec.allStreams != nil {
		rec.allStreams.release()
		rec.allStreams = nil
	}
}

// releaseSlots gives back the concurrency slots the request holds: when it
// ends, or when its connection is hijacked (a WebSocket is bounded by the
// connection caps, not the request caps, for as long as it lives).
func (rec *recorder) releaseSlots() {
	if rec.gate != nil {
		rec.gate.release()
		rec.gate = nil
	}
	if rec.slot != nil {
		rec.perIP.release(rec.slotKey, rec.slot)
		rec.slot, rec.perIP = nil, nil
	}
}

// use labels the request with route c and, for a streaming route, trades
// the whole-request deadlines for SendTimeout measured from each
// progress, both ways.
func (rec *recorder) use(c *compiledRoute, r *http.Request) {
	st := c.stats.Load()
	if st == nil || st.m != rec.srv.metrics {
		st = rec.srv.metrics.route(c.name)
		c.stats.Store(st)
	}
	rec.route = st
	if c.stream {
		rec.through = true // it streams: no write-behind
	}
	if c.stream && rec.send > 0 {
		rec.total = 0
		rc := http.NewResponseController(rec.ResponseWriter)
		rc.SetWriteDeadline(time.Time{})
		if r.Body != nil && r.Body != http.NoBody {
			rc.SetReadDeadline(time.Time{})
			r.Body = &progressReader{ReadCloser: r.Body, rc: rc, send: rec.send}
		}
	}
}

// NoteUpstream records the upstream that answered and how long it took,
// for the access log (the reverse proxy calls it).
func (rec *recorder) NoteUpstream(name string, d time.Duration) {
	rec.upstream, rec.upstreamTime = name, d
}

// SetWriteDeadline sets the write deadline, as http.ResponseController
// does; the zero time lifts WriteTimeout for the rest of the response
// (SendTimeout still applies to each stall).
func (rec *recorder) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		rec.total = 0
	} else {
		rec.total = t.Sub(rec.start)
	}
	return http.NewResponseController(rec.ResponseWriter).SetWriteDeadline(t)
}

// progressReader moves the read deadline to SendTimeout from now as the
// request body comes in, at most four times per SendTimeout: an upload
// may take as long as it keeps moving. Once the body has ended it lifts
// the deadline, which would otherwise fire in net/http's read of what
// follows and cancel a request still being answered.
type progressReader struct {
	io.ReadCloser
	rc      *http.ResponseController
	send    time.Duration
	lastArm time.Time
	ended   bool
}

func (p *progressReader) Read(b []byte) (int, error) {
	if p.ended {
		return p.ReadCloser.Read(b)
	}
	if now := time.Now(); now.Sub(p.lastArm) >= p.send/4 {
		p.lastArm = now
		p.rc.SetReadDeadline(now.Add(p.send))
	}
	n, err := p.ReadCloser.Read(b)
	if err != nil {
		p.ended = true
		if err == io.EOF {
			p.rc.SetReadDeadline(time.Time{})
		}
	}
	return n, err
}

// armAfter is how many bytes may be written before the write deadline is
// moved: less than net/http buffers (4 KiB), so a write that can block on
// the client always has a deadline measured from recent progress.
const armAfter = 2 << 10

// progress is called before writing n bytes. It moves the write deadline
// to SendTimeout from now (but no later than WriteTimeout from the start),
// at most four times per SendTimeout: a client that stops reading gets its
// request cut SendTimeout after the last write that went through, and its
// slots back, not only when the whole response's time is up.
func (rec *recorder) progress(n int) {
	if rec.send <= 0 {
		return
	}
	if rec.unarmed += n; rec.unarmed < armAfter {
		return
	}
	rec.unarmed = 0
	now := time.Now()
	if now.Sub(rec.lastArm) < rec.send/4 {
		return
	}
	rec.lastArm = now
	d := now.Add(rec.send)
	if end := rec.start.Add(rec.total); rec.total > 0 && end.Before(d) {
		d = end
	}
	http.NewResponseController(rec.ResponseWriter).SetWriteDeadline(d)
}

// WriteHeader records the status. Informational answers (1xx but 101)
// are passed on at once and are not the status. The status is passed on
// with the first bytes that reach the ResponseWriter (or by finish), so
// that finish may still add Content-Length; a second call, or one after
// Write, is ignored, as net/http ignores it.
func (rec *recorder) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		if rec.status == 0 {
			rec.ResponseWriter.WriteHeader(code)
		}
		return
	}
	if rec.status != 0 {
		return
	}
	rec.status = code
	rec.pending = true
	if rec.through {
		rec.sendHeader()
	}
}

// sendHeader passes a pending WriteHeader on; whatever is written to the
// ResponseWriter goes through it first.
func (rec *recorder) sendHeader() {
	rec.wrote = true
	if rec.pending {
		rec.pending = false
		rec.ResponseWriter.WriteHeader(rec.status)
	}
}

// Write-behind: the first directMax bytes of a response go straight to
// net/http, whose own buffer holds them; the next ones, up to behindMax,
// are kept in the recorder, so that a handler never waits on a client that
// reads slowly, or not at all, while it holds a concurrency slot. finish
// writes them out once the slot is given back, under the send deadline.
// A response beyond behindMax, or one that flushes (a stream), is written
// through, with the deadline moved as it progresses.
const (
	directMax = 2 << 10
	behindMax = 64 << 10
)

var behindBufs = sync.Pool{New: func() any { b := make([]byte, 0, behindMax); return &b }}

func (rec *recorder) Write(p []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.keepBehind(len(p)) {
		*rec.behind = append(*rec.behind, p...)
		rec.bytes += int64(len(p))
		return len(p), nil
	}
	rec.progress(len(p))
	rec.sendHeader()
	n, err := rec.ResponseWriter.Write(p)
	rec.bytes += int64(n)
	return n, err
}

// WriteString writes without converting s to a byte slice when the
// underlying writer can (net/http's does).
func (rec *recorder) WriteString(s string) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.keepBehind(len(s)) {
		*rec.behind = append(*rec.behind, s...)
		rec.bytes += int64(len(s))
		return len(s), nil
	}
	rec.progress(len(s))
	rec.sendHeader()
	var n int
	var err error
	if sw, ok := rec.ResponseWriter.(io.StringWriter); ok {
		n, err = sw.WriteString(s)
	} else {
		n, err = rec.ResponseWriter.Write([]byte(s))
	}
	rec.bytes += int64(n)
	return n, err
}

// keepBehind reports whether n more bytes go to the write-behind buffer;
// when they do not fit, it writes the buffer out and switches to writing
// through.
func (rec *recorder) keepBehind(n int) bool {
	switch {
	case rec.through:
		return false
	case rec.behind == nil && rec.bytes+int64(n) <= directMax && !rec.mux:
		return false
	case rec.behind == nil:
		rec.behind = behindBufs.Get().(*[]byte)
	}
	if len(*rec.behind)+n <= behindMax {
		return true
	}
	rec.through = true
	rec.writeBehind()
	return false
}

// writeBehind writes out and drops the write-behind buffer.
func (rec *recorder) writeBehind() {
	if rec.behind == nil {
		return
	}
	rec.sendHeader()
	b := *rec.behind
	if len(b) > 0 {
		rec.progress(len(b))
		rec.ResponseWriter.Write(b)
	}
	*rec.behind = b[:0]
	behindBufs.Put(rec.behind)
	rec.behind = nil
}

// finish is called when the handler has returned and its slots are back:
// it sets the write deadline for what is left to send (the write-behind
// buffer and what net/http buffers) to SendTimeout from now, so that a
// client that does not read holds nothing for long. Over HTTP/2 and HTTP/3 it sends
// the answer before returning, so that a stalled answer still counts
// against its client's streams (net/http's HTTP/2 server would otherwise
// send it after the handler is gone). An answer none of which has gone
// out yet (up to behindMax) gets its Content-Length, over any protocol.
func (rec *recorder) finish(r *http.Request) {
	if rec.send > 0 {
		d := time.Now().Add(rec.send)
		if end := rec.start.Add(rec.total); rec.total > 0 && end.Before(d) {
			d = end
		}
		http.NewResponseController(rec.ResponseWriter).SetWriteDeadline(d)
		rec.lastArm, rec.unarmed = time.Now(), 0
	}
	if h := rec.Header(); !rec.wrote && r.Method != "HEAD" && bodyAllowed(rec.status) &&
		h["Content-Length"] == nil && h["Transfer-Encoding"] == nil && !hasTrailers(h) {
		h["Content-Length"] = []string{strconv.FormatInt(rec.bytes, 10)}
	}
	rec.writeBehind()
	rec.sendHeader()
	if rec.mux {
		http.NewResponseController(rec.ResponseWriter).Flush()
	}
}

// hasTrailers reports whether h announces trailers, which need an answer
// without Content-Length over HTTP/1.1.
func hasTrailers(h http.Header) bool {
	if h["Trailer"] != nil {
		return true
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// unsent reports whether nothing of the answer has reached the
// ResponseWriter yet, and if so forgets it: a handler that panicked may
// then be answered with 500.
func (rec *recorder) unsent() bool {
	if rec.wrote {
		return false
	}
	if rec.behind != nil {
		*rec.behind = (*rec.behind)[:0]
	}
	rec.status, rec.pending, rec.bytes = 0, false, 0
	return true
}

// bodyAllowed reports whether a response with status may have a body.
func bodyAllowed(status int) bool {
	return status == 0 || status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// Flush sends what is buffered to the client (for streaming responses):
// from now on the response is written through.
func (rec *recorder) Flush() {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	rec.through = true
	rec.writeBehind()
	rec.sendHeader()
	rec.progress(armAfter)
	http.NewResponseController(rec.ResponseWriter).Flush()
}

// Hijack hands the connection over, for WebSockets over HTTP/1.1.
// The request's slots are given back, and the connection ends after
// IdleTimeout without progress either way, in place of the server's
// whole-request deadlines. The ReadWriter returned reads and writes
// through that connection too, starting with what net/http had read
// ahead.
func (rec *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	rec.through = true
	rec.writeBehind()
	rec.sendHeader()
	c, rw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err != nil {
		return c, rw, err
	}
	if rec.status == 0 {
		rec.status = http.StatusSwitchingProtocols
	}
	rec.releaseSlots()
	c.SetDeadline(time.Time{})
	ic := &idleConn{Conn: c, idle: rec.idle}
	if n := rw.Reader.Buffered(); n > 0 {
		ic.ahead, _ = rw.Reader.Peek(n)
		ic.ahead = bytes.Clone(ic.ahead)
	}
	rw.Writer.Flush() // what net/http buffered, written as is
	return ic, bufio.NewReadWriter(bufio.NewReader(ic), bufio.NewWriter(ic)), nil
}

// idleConn is a hijacked connection that ends after idle without progress
// in either direction: each read and each write that moves data moves
// both deadlines (at most four times per idle), so that a server that
// pushes to a client that sends nothing, or the reverse, is not cut.
type idleConn struct {
	net.Conn
	idle  time.Duration
	ahead []byte       // read ahead by net/http, read first
	armed atomic.Int64 // when the deadlines were last moved, Unix ns
}

func (c *idleConn) alive() {
	if c.idle <= 0 {
		return
	}
	now := time.Now()
	if now.UnixNano()-c.armed.Load() < int64(c.idle/4) {
		return
	}
	c.armed.Store(now.UnixNano())
	c.Conn.SetDeadline(now.Add(c.idle))
}

func (c *idleConn) Read(b []byte) (int, error) {
	if len(c.ahead) > 0 {
		n := copy(b, c.ahead)
		c.ahead = c.ahead[n:]
		return n, nil
	}
	c.alive()
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.alive()
	}
	return n, err
}

func (c *idleConn) Write(b []byte) (int, error) {
	c.alive()
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.alive()
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
