package server

import (
	"crypto/tls"
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// h2Conn is an HTTP/2 connection as the HTTP/2 server reads it: it follows
// the frames the client sends and cuts a connection that floods the
// server with frames that cost work and carry no request: SETTINGS, PING,
// PRIORITY, RST_STREAM, empty DATA, HEADERS and CONTINUATION, unknown
// types, frames the server has to answer with RST_STREAM (DATA on a
// closed stream, malformed HEADERS: it follows what the server writes
// too), and WINDOW_UPDATE beyond what the data sent to the client
// explains. Go's HTTP/2 server bounds rapid resets itself, not these.
type h2Conn struct {
	*tls.Conn
	flooded func(c *h2Conn, frame string) // told once when the connection is cut

	preface int          // bytes of the client preface still to skip
	in      frameReader  // the frames the client sends
	out     frameReader  // the frames the server writes
	control tokenBucket  // for SETTINGS, PING, PRIORITY, RST_STREAM, empty frames, resets, unknown
	windows int          // WINDOW_UPDATE frames allowed before more data is written
	written atomic.Int64 // bytes written to the client and not yet turned into windows
	resets  atomic.Int64 // RST_STREAM frames the server wrote, not yet charged
	cut     error        // set once the connection is cut
	now     func() time.Time
}

// Flood limits: a legitimate client sends a few control frames at the
// start and some as it cancels requests; browsers send WINDOW_UPDATE in
// proportion to the data they receive.
const (
	controlBurst      = 1000 // control frames at once
	controlPerSecond  = 100  // and then per second
	windowBurst       = 1000 // WINDOW_UPDATE frames at once
	windowPerKiBWrite = 1    // and then per KiB written to the client
)

var errH2Flood = errors.New("http2: too many control frames from the client")

func newH2Conn(c *tls.Conn, flooded func(*h2Conn, string)) *h2Conn {
	h := &h2Conn{Conn: c, flooded: flooded, preface: len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
		windows: windowBurst, now: time.Now}
	h.control = tokenBucket{tokens: controlBurst, last: h.now()}
	return h
}

// NetConn returns the *tls.Conn under c.
func (c *h2Conn) NetConn() net.Conn { return c.Conn }

func (c *h2Conn) Read(p []byte) (int, error) {
	if c.cut != nil {
		return 0, c.cut
	}
	n, err := c.Conn.Read(p)
	if frame := c.follow(p[:n]); frame != "" {
		c.cut = errH2Flood
		c.flooded(c, frame)
		c.Conn.Close()
		return 0, c.cut
	}
	return n, err
}

func (c *h2Conn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	c.out.read(p[:n], func(typ, _ byte, _ int) {
		if typ == frameRSTStream {
			c.resets.Add(1)
		}
	})
	return n, err
}

// frameReader follows the frame headers of one direction of a connection
// across reads or writes of any size.
type frameReader struct {
	hdr  [9]byte
	nhdr int
	skip int // payload bytes of the current frame still to pass
}

// read passes p, calling frame for each frame header completed in it.
func (f *frameReader) read(p []byte, frame func(typ, flags byte, length int)) {
	for len(p) > 0 {
		if f.skip > 0 {
			k := min(f.skip, len(p))
			f.skip -= k
			p = p[k:]
			continue
		}
		k := copy(f.hdr[f.nhdr:], p)
		f.nhdr += k
		p = p[k:]
		if f.nhdr < len(f.hdr) {
			return
		}
		f.nhdr = 0
		f.skip = int(f.hdr[0])<<16 | int(f.hdr[1])<<8 | int(f.hdr[2])
		frame(f.hdr[3], f.hdr[4], f.skip)
	}
}

// follow reads the frame headers in p and returns the type of the frame
// that went over its budget, or "".
func (c *h2Conn) follow(p []byte) string {
	if c.preface > 0 {
		k := min(c.preface, len(p))
		c.preface -= k
		p = p[k:]
	}
	if r := c.resets.Swap(0); r > 0 { // the server's own resets cost as much
		if !c.control.takeN(c.now(), controlPerSecond, controlBurst, float64(r)) {
			return "RST_STREAM (from the server: frames it had to refuse)"
		}
	}
	cut := ""
	c.in.read(p, func(typ, flags byte, length int) {
		if cut == "" {
			cut = c.charge(typ, flags, length)
		}
	})
	return cut
}

// HTTP/2 frame types (RFC 9113 §6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePushPromise  = 0x5
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9
	flagEndStream     = 0x1
)

var frameNames = map[byte]string{framePriority: "PRIORITY", frameRSTStream: "RST_STREAM",
	frameSettings: "SETTINGS", framePing: "PING", frameData: "DATA", frameHeaders: "HEADERS",
	frameContinuation: "CONTINUATION"}

// charge takes a frame of type typ from its budget and returns its name
// when none is left.
func (c *h2Conn) charge(typ, flags byte, length int) string {
	switch typ {
	case frameHeaders, frameContinuation:
		if length > 0 {
			return "" // requests; net/http bounds their size
		}
	case framePushPromise, frameGoAway:
		return "" // a protocol error or the end: the connection closes
	case frameData:
		if length > 0 || flags&flagEndStream != 0 {
			return ""
		}
	case frameWindowUpdate:
		if kib := c.written.Load() / 1024; kib > 0 {
			// Credit for data sent is not capped at the burst: a client
			// acknowledges a large response in many frames after it.
			c.windows = min(c.windows+int(kib)*windowPerKiBWrite, 1<<30)
			c.written.Add(-kib * 1024)
		}
		if c.windows--; c.windows < 0 {
			return "WINDOW_UPDATE"
		}
		return ""
	}
	if !c.control.take(c.now(), controlPerSecond, controlBurst) {
		if name, ok := frameNames[typ]; ok {
			return name
		}
		return "unknown"
	}
	return ""
}

// tokenBucket is a token bucket without a lock, for one goroutine.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

func (b *tokenBucket) take(now time.Time, perSecond, burst float64) bool {
	return b.takeN(now, perSecond, burst, 1)
}

// takeN takes n tokens, going into debt if there are fewer, and reports
// whether there were enough.
func (b *tokenBucket) takeN(now time.Time, perSecond, burst, n float64) bool {
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*perSecond)
	b.last = now
	b.tokens -= n
	return b.tokens >= 0
}
