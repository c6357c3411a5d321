package server

import "syscall"

// udpBufferFix is the command that lets Linux grant quic-go's buffers.
const udpBufferFix = "sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000 (and the same in /etc/sysctl.d/ to keep it)"

// Linux lets a process with CAP_NET_ADMIN exceed net.core.rmem_max.
const (
	udpForceRcv = syscall.SO_RCVBUFFORCE
	udpForceSnd = syscall.SO_SNDBUFFORCE
)

func forceBuffer(raw syscall.RawConn, opt, want int) {
	raw.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, want) })
}
