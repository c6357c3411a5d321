//go:build unix

package server

import "syscall"

// udpBuffers asks for want bytes of receive and send buffer where the
// socket has less, as quic-go does (forcing it where the platform and the
// process's privileges allow), and returns what the kernel granted.
func udpBuffers(c udpConn, want int) (rcv, snd int, ok bool) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	get := func(opt int) int {
		var v int
		raw.Control(func(fd uintptr) { v, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt) })
		return v
	}
	if get(syscall.SO_RCVBUF) < want {
		c.SetReadBuffer(want)
		if get(syscall.SO_RCVBUF) < want {
			forceBuffer(raw, udpForceRcv, want)
		}
	}
	if get(syscall.SO_SNDBUF) < want {
		c.SetWriteBuffer(want)
		if get(syscall.SO_SNDBUF) < want {
			forceBuffer(raw, udpForceSnd, want)
		}
	}
	return get(syscall.SO_RCVBUF), get(syscall.SO_SNDBUF), true
}
