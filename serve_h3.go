package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

// listenH3 opens the HTTP/3 socket: UDP on the host and port of the HTTPS
// listener (the port it got, when listen.https asks for any: then, should
// that UDP port be taken, it tries a few other ports for both).
func (l *listeners) listenH3(addr string) error {
	host, want, _ := net.SplitHostPort(addr)
	for try := 0; ; try++ {
		port := l.https.Addr().(*net.TCPAddr).Port
		udp := net.JoinHostPort(host, strconv.Itoa(port))
		pc, err := net.ListenPacket("udp", udp)
		if err == nil {
			l.h3 = pc
			// httpsd logs its own warning, with the fix, when the
			// kernel grants smaller UDP buffers than quic-go wants.
			os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
			return nil
		}
		if want != "0" || try == 4 {
			return fmt.Errorf("listen.http3 %s (udp): %w", udp, err)
		}
		l.https.Close()
		if l.https, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("listen.https %s: %w", addr, err)
		}
	}
}
