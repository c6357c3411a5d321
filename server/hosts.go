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

// validHost reports whether a Host header value is a host name or IP
// literal with an optional numeric port: "example.com", "example.com:8443",
// "127.0.0.1", "[::1]:8443". It refuses what hostOnly would otherwise
// cut short, such as "[::1]evil", "[::1", "a:b:c" without brackets, or a
// zone ("[fe80::1%eth0]"). net/http has already refused control
// characters and spaces; an empty Host is left to the host check.
func validHost(hostport string) bool {
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return false
		}
		host, port = hostport[1:end], hostport[end+1:]
		if port != "" && port[0] != ':' {
			return false
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return false
		}
	} else if i := strings.IndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i:]
		if strings.ContainsAny(host, "[]") {
			return false
		}
	}
	if port != "" {
		for _, d := range port[1:] {
			if d < '0' || d > '9' {
				return false
			}
		}
		if len(port) > 6 {
			return false
		}
	}
	return !strings.ContainsAny(host, "[]%/\\@?#")
}
