package server

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address of the client of r, as the per-client limits
// and the access log see it: the connection's peer, or, when the peer is a
// trusted proxy, the last address in X-Forwarded-For that is not a trusted
// proxy itself (the client the first proxy saw).
func (st *settings) clientAddr(r *http.Request) string {
	if len(st.trusted) == 0 {
		return r.RemoteAddr
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !st.isTrusted(peer.Addr()) {
		return r.RemoteAddr
	}
	xff := r.Header["X-Forwarded-For"]
	for i := len(xff) - 1; i >= 0; i-- {
		list := xff[i]
		for list != "" {
			var last string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				list, last = list[:j], list[j+1:]
			} else {
				list, last = "", list
			}
			ip, err := netip.ParseAddr(strings.TrimSpace(last))
			if err != nil {
				return r.RemoteAddr // a malformed chain: believe only the peer
			}
			if !st.isTrusted(ip) {
				return ip.Unmap().String()
			}
		}
	}
	return r.RemoteAddr
}

func (st *settings) isTrusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range st.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
