//go:build !unix

package server

// udpBufferFix is empty where the buffers cannot be inspected.
const udpBufferFix = ""

// udpBuffers cannot inspect socket buffers on this platform.
func udpBuffers(udpConn, int) (rcv, snd int, ok bool) { return 0, 0, false }
