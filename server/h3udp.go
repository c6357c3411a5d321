package server

import (
	"fmt"
	"net"
	"syscall"
)

// udpBufferWant is the UDP receive and send buffer size quic-go asks the
// kernel for (7 MiB): less drops packets at high rates, which QUIC takes
// for congestion.
const udpBufferWant = 7 << 20

// udpConn is what sizing a UDP socket's buffers takes; *net.UDPConn has it.
type udpConn interface {
	SetReadBuffer(int) error
	SetWriteBuffer(int) error
	SyscallConn() (syscall.RawConn, error)
}

// UDPBufferWarning opens a UDP socket on loopback, asks for the buffers
// quic-go asks for, and returns a warning naming the sysctl that lets the
// kernel grant them, or "" when it does (or where it cannot be known).
// It is what `httpsd check` reports; ServeQUIC logs the same once.
func UDPBufferWarning() string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return ""
	}
	defer pc.Close()
	return udpBufferWarning(pc)
}

func udpBufferWarning(pc net.PacketConn) string {
	uc, ok := pc.(udpConn)
	if !ok {
		return ""
	}
	rcv, snd, ok := udpBuffers(uc, udpBufferWant)
	if !ok || rcv >= udpBufferWant && snd >= udpBufferWant {
		return ""
	}
	return udpBufferMessage(rcv, snd)
}

func udpBufferMessage(rcv, snd int) string {
	return fmt.Sprintf("UDP buffers are smaller than QUIC wants (receive %d KiB, send %d KiB; wanted %d KiB): HTTP/3 may drop packets under load; raise the kernel's limit: %s",
		rcv>>10, snd>>10, udpBufferWant>>10, udpBufferFix)
}
