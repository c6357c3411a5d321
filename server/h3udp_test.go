//go:build unix

package server

import (
	"math"
	"net"
	"strings"
	"testing"
)

// TestUDPBufferWarning: a buffer the kernel will not grant gives one
// warning naming the sysctl; what it grants gives none.
func TestUDPBufferWarning(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	uc := pc.(udpConn)
	for _, tt := range []struct {
		name string
		want int
		warn bool
	}{{"granted", 64 << 10, false}, {"too large", math.MaxInt32, true}} {
		t.Run(tt.name, func(t *testing.T) {
			rcv, snd, ok := udpBuffers(uc, tt.want)
			if !ok {
				t.Fatal("udpBuffers could not read the buffer sizes")
			}
			if warn := rcv < tt.want || snd < tt.want; warn != tt.warn {
				t.Errorf("udpBuffers(%d) = %d, %d; want a shortfall %v", tt.want, rcv, snd, tt.warn)
			}
		})
	}
	w := udpBufferMessage(1<<20, 2<<20)
	if !strings.Contains(w, "sysctl -w") || !strings.Contains(w, "receive 1024 KiB, send 2048 KiB") {
		t.Errorf("warning %q does not say what was granted and which sysctl fixes it", w)
	}
	t.Logf("UDPBufferWarning() on this machine: %q", UDPBufferWarning())
}
