package server

import (
	"net/netip"
	"strings"
)

// hostSet matches request hosts against the configured names: exact DNS
// names, "*.example.com" wildcards (one label) and IP literals.
type hostSet struct {
	exact map[string]bool
	wild  map[string]bool // suffixes with the leading dot: ".example.com"
}

func newHostSet(hosts []string) hostSet {
	s := hostSet{exact: map[string]bool{}, wild: map[string]bool{}}
	for _, h := range hosts {
		h = normalizeHost(h)
		if suffix, ok := strings.CutPrefix(h, "*"); ok && strings.HasPrefix(suffix, ".") {
			s.wild[suffix] = true
			continue
		}
		s.exact[h] = true
	}
	return s
}

// contains reports whether host (already stripped of its port) is served.
func (s hostSet) contains(host string) bool {
	if s.exact[host] {
		return true
	}
	host = normalizeHost(host)
	if s.exact[host] {
		return true
	}
	if dot := strings.IndexByte(host, '.'); dot > 0 && len(s.wild) > 0 {
		return s.wild[host[dot:]]
	}
	return false
}

// normalizeHost lower-cases a name, drops a trailing dot and brackets, and
// puts IP literals in canonical form.
func normalizeHost(h string) string {
	h = strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), ".")
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap().String()
	}
	return strings.ToLower(h)
}

// hostOnly strips the port from a Host header value, keeping IPv6 literals
// without brackets. It does not allocate.
func hostOnly(hostport string) string {
	if strings.HasPrefix(hostport, "[") {
		if end := strings.IndexByte(hostport, ']'); end > 0 {
			return hostport[1:end]
		}
		return hostport[1:]
	}
	if i := strings.IndexByte(hostport, ':'); i >= 0 && strings.IndexByte(hostport[i+1:], ':') < 0 {
		return hostport[:i] // host:port; a bare IPv6 literal has several colons
	}
	return hostport
}
