package server

import (
	"bytes"
	"crypto/tls"
	"net"
	"sync/atomic"
)

// h1Conn is the plaintext view of an HTTP/1 connection, given to net/http
// in place of the *tls.Conn (or plain connection) under it, so that httpsd
// sees what net/http reads and writes on its own:
//
//   - request headers: a connection whose requests carried both
//     Content-Length and Transfer-Encoding header lines is closed after
//     the response (RFC 9112 §6.1), since net/http keeps it open;
//   - responses net/http writes without calling a handler (400, 417, 431,
//     501, 505 for malformed requests): they are counted and logged.
type h1Conn struct {
	net.Conn
	tls *tls.ConnectionState // nil for plain HTTP

	// handling is set while a handler answers a request on this
	// connection, from when it starts until the connection goes idle.
	handling atomic.Bool
	// ownResponse is told of each response net/http writes by itself.
	ownResponse func(c *h1Conn, code int)

	scan    headerScan
	smugg   atomic.Bool // saw both Content-Length and Transfer-Encoding
	readAny atomic.Bool // a byte has been read
}

// NetConn returns the connection under c.
func (c *h1Conn) NetConn() net.Conn { return c.Conn }

func (c *h1Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if !c.readAny.Load() {
			c.readAny.Store(true)
		}
		if !c.smugg.Load() && c.scan.scan(p[:n]) {
			c.smugg.Store(true)
		}
	}
	return n, err
}

func (c *h1Conn) Write(p []byte) (int, error) {
	if !c.handling.Load() && c.ownResponse != nil {
		if code, ok := statusLine(p); ok {
			c.ownResponse(c, code)
		}
	}
	return c.Conn.Write(p)
}

// statusLine parses the status code of a response that p starts with.
func statusLine(p []byte) (int, bool) {
	if len(p) < 12 || !bytes.HasPrefix(p, []byte("HTTP/1.")) || p[8] != ' ' {
		return 0, false
	}
	code := 0
	for _, d := range p[9:12] {
		if d < '0' || d > '9' {
			return 0, false
		}
		code = code*10 + int(d-'0')
	}
	return code, true
}

// headerScan looks, across reads, for header lines named Content-Length
// and Transfer-Encoding at the start of any line of the byte stream. It
// cannot tell header lines from body lines without parsing HTTP, so it may
// see both in a body: the price of that mistake is a connection closed
// after a response, which is safe, while missing a real pair is not.
type headerScan struct {
	partial    [len("transfer-encoding:")]byte // start of a line cut by the end of a read
	n          int                             // bytes in partial
	collecting bool                            // the last read ended within the first bytes of a line
	sawCL      bool
	sawTE      bool
}

var (
	nameCL = []byte("content-length:")
	nameTE = []byte("transfer-encoding:")
)

// scan feeds p and reports whether both names have now been seen.
func (s *headerScan) scan(p []byte) bool {
	if s.collecting { // continue the line cut at the end of the last read
		take := min(len(s.partial)-s.n, len(p))
		ended := false
		if i := bytes.IndexByte(p[:take], '\n'); i >= 0 {
			take, ended = i, true
		}
		s.n += copy(s.partial[s.n:], p[:take])
		if !ended && s.n < len(s.partial) {
			return s.sawCL && s.sawTE
		}
		s.check(s.partial[:s.n])
		s.collecting, s.n = false, 0
	}
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return s.sawCL && s.sawTE
		}
		p = p[i+1:]
		line := p[:min(len(p), len(s.partial))]
		if j := bytes.IndexByte(line, '\n'); j >= 0 {
			s.check(line[:j])
			continue
		}
		if len(line) == len(s.partial) {
			s.check(line)
			continue
		}
		s.collecting, s.n = true, copy(s.partial[:], line)
		return s.sawCL && s.sawTE
	}
}

func (s *headerScan) check(line []byte) {
	switch {
	case hasPrefixFold(line, nameCL):
		s.sawCL = true
	case hasPrefixFold(line, nameTE):
		s.sawTE = true
	}
}

// hasPrefixFold reports whether line starts with name, ignoring ASCII case.
func hasPrefixFold(line, name []byte) bool {
	if len(line) < len(name) {
		return false
	}
	for i, c := range name {
		if l := line[i]; l != c && l|0x20 != c {
			return false
		}
	}
	return true
}
