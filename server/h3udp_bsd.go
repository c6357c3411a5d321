//go:build unix && !linux

package server

import "syscall"

// udpBufferFix is the command that lets macOS and the BSDs grant
// quic-go's buffers.
const udpBufferFix = "sysctl -w kern.ipc.maxsockbuf=8441037"

// Only Linux can force a buffer past the system's limit.
const udpForceRcv, udpForceSnd = 0, 0

func forceBuffer(syscall.RawConn, int, int) {}
