package server

import (
	"net/http"
	"strconv"
	"strings"
)

// handling has h answer through handled.
func handling(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled(w, r)
		h.ServeHTTP(w, r)
	})
}

// handled marks r as answered by a handler, not by net/http on its own
// (see h1Conn.ownResponse), and asks for its connection to be closed
// where the request needs it (see fromConn).
func handled(w http.ResponseWriter, r *http.Request) {
	if fromConn(r) {
		w.Header()["Connection"] = connectionClose
	}
}

// redirectHandler answers every plain-HTTP request for a served host with a
// 308 to the same path and query over HTTPS on port (left out when 0 or
// 443), and 421 for any other host, so it is never an open redirect. The
// server runs it through handling.
func redirectHandler(s *Server, port int) http.Handler {
	suffix := ""
	if port != 0 && port != 443 {
		suffix = ":" + strconv.Itoa(port)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !validHost(r.Host) {
			w.Header()["Connection"] = connectionClose
			http.Error(w, "400 bad request: malformed Host", http.StatusBadRequest)
			return
		}
		host := normalizeHost(hostOnly(r.Host))
		if !s.live.Load().hosts.contains(host) {
			http.Error(w, "421 misdirected request", http.StatusMisdirectedRequest)
			return
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		uri := r.URL.RequestURI()
		if !strings.HasPrefix(uri, "/") {
			uri = "/"
		}
		w.Header().Set("Location", "https://"+host+suffix+uri)
		w.WriteHeader(http.StatusPermanentRedirect)
	})
}
