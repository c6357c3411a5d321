package main

import (
	"bufio"
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEndToEndSelfSigned(t *testing.T) {
	vars, dataDir := dataDirEnv(t)
	r := startRun(t, vars, "-config", "testdata/e2e.yaml")
	roots := caPool(t, filepath.Join(dataDir, "ca.crt"))
	client := clientFor(roots, r.https)
	base := "https://localhost:" + port(r.https)

	if try, _ := r.logs.find("httpsd serving")["try"].(string); try != "curl --cacert "+filepath.Join(dataDir, "ca.crt")+" "+base+"/hello/world" {
		t.Errorf("start-up line try = %q, want a curl command for %s", try, base)
	}

	tests := []struct {
		method, path, host string
		status             int
		body               string
	}{
		{"GET", "/hello/world", "", 200, "<b>Hello world</b>!"},
		{"GET", "/hello/%3Cscript%3E", "", 200, "<b>Hello &lt;script&gt;</b>!"},
		{"HEAD", "/hello/world", "", 200, ""},
		{"GET", "/healthz", "", 200, "ok\n"},
		{"GET", "/nope", "", 404, "404 not found\n"},
		{"PUT", "/hello/world", "", 405, "Method Not Allowed\n"},
		{"GET", "/hello/world", "wrong.example", 421, "421 misdirected request\n"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, base+tt.path, nil)
		if tt.host != "" {
			req.Host = tt.host
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status || string(body) != tt.body {
			t.Errorf("%s %s (Host %q) = %d %q, want %d %q", tt.method, tt.path, tt.host, resp.StatusCode, body, tt.status, tt.body)
		}
		if resp.Proto != "HTTP/2.0" {
			t.Errorf("%s %s proto = %s, want HTTP/2.0", tt.method, tt.path, resp.Proto)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s X-Content-Type-Options = %q, want nosniff", tt.method, tt.path, got)
		}
		if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
			t.Errorf("%s %s Strict-Transport-Security = %q, want none for self-signed", tt.method, tt.path, got)
		}
	}
	waitLog(t, r, "request", time.Second) // the access log is flushed every 100ms

	t.Run("redirect", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+r.http+"/hello/x?y=1", nil)
		req.Host = "localhost"
		resp, err := clientFor(nil, r.http).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := base + "/hello/x?y=1"
		if resp.StatusCode != 308 || resp.Header.Get("Location") != want {
			t.Errorf("GET http://localhost/hello/x?y=1 = %d %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		req.Host = "evil.example"
		resp, err = clientFor(nil, r.http).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 421 {
			t.Errorf("GET http://evil.example/ = %d, want 421", resp.StatusCode)
		}
	})

	t.Run("health command", func(t *testing.T) {
		tests := []struct {
			vars map[string]string
			args []string
			code int
			want string
		}{
			{map[string]string{"HTTPSD_LISTEN_ADMIN": r.admin}, nil, 0, "ok http://" + r.admin + "/healthz"},
			{map[string]string{"HTTPSD_LISTEN_ADMIN": "", "HTTPSD_LISTEN_HTTPS": r.https}, nil, 0, "ok https://" + r.https + "/healthz"},
			{map[string]string{"HTTPSD_LISTEN_ADMIN": "", "HTTPSD_LISTEN_HTTPS": ":" + port(r.https)}, nil, 0, "ok https://127.0.0.1:" + port(r.https) + "/healthz"},
			{nil, []string{"-url", "https://" + r.https + "/healthz"}, 0, "ok"},
			{nil, []string{"-url", "https://" + r.https + "/nope"}, 1, "404 Not Found"},
			{map[string]string{"HTTPSD_LISTEN_ADMIN": "", "HTTPSD_LISTEN_HTTPS": "127.0.0.1:1"}, nil, 1, "connection refused"},
		}
		for _, tt := range tests {
			code, out, errOut := runCmd(t, tt.vars, append([]string{"health", "-config", "testdata/e2e.yaml"}, tt.args...)...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Errorf("httpsd health %v %v = exit %d %q%q, want %d and %q", tt.vars, tt.args, code, out, errOut, tt.code, tt.want)
			}
		}
	})

	t.Run("tls", func(t *testing.T) {
		tests := []struct {
			name   string
			conf   *tls.Config
			ok     bool
			suite  uint16
			curve  tls.CurveID
			protoc string
		}{
			{"default client: TLS 1.3, post-quantum, h2", &tls.Config{NextProtos: []string{"h2", "http/1.1"}}, true, 0, tls.X25519MLKEM768, "h2"},
			{"TLS 1.2 ECDHE-GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 0, ""},
			{"TLS 1.2 CBC refused", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}, false, 0, 0, ""},
			{"TLS 1.1 refused", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false, 0, 0, ""},
			{"http/1.1 only", &tls.Config{NextProtos: []string{"http/1.1"}}, true, 0, 0, "http/1.1"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				conf := tt.conf.Clone()
				conf.RootCAs, conf.ServerName = roots, "localhost"
				conn, err := tls.Dial("tcp", r.https, conf)
				if !tt.ok {
					if err == nil {
						conn.Close()
						t.Fatalf("handshake succeeded, want it refused")
					}
					return
				}
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				defer conn.Close()
				cs := conn.ConnectionState()
				if tt.suite != 0 && cs.CipherSuite != tt.suite {
					t.Errorf("cipher suite = %s, want %s", tls.CipherSuiteName(cs.CipherSuite), tls.CipherSuiteName(tt.suite))
				}
				if tt.curve != 0 && cs.CurveID != tt.curve {
					t.Errorf("key exchange = %v, want %v", cs.CurveID, tt.curve)
				}
				if cs.NegotiatedProtocol != tt.protoc {
					t.Errorf("ALPN = %q, want %q", cs.NegotiatedProtocol, tt.protoc)
				}
			})
		}
	})

	t.Run("request in flight survives shutdown", func(t *testing.T) {
		conn, err := tls.Dial("tcp", r.https, &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// A slow upload: the server is still reading the body when
		// shutdown begins, and answers once it has it.
		io.WriteString(conn, "GET /hello/late HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n12345")
		if !eventually(5*time.Second, func() bool { return strings.Contains(r.logs.String(), `"path":"/hello/late"`) }) {
			t.Fatal("the request was not answered before its body ended")
		}
		r.cancel()
		waitLog(t, r, "shutting down", 5*time.Second)
		io.WriteString(conn, "67890")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("reading the response to a request sent across shutdown: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "<b>Hello late</b>!" {
			t.Errorf("GET /hello/late across shutdown = %d %q, want 200", resp.StatusCode, body)
		}
		r.stop(t)
		if _, err := tls.Dial("tcp", r.https, &tls.Config{RootCAs: roots, ServerName: "localhost"}); err == nil {
			t.Error("new connection after shutdown succeeded, want refused")
		}
		if !strings.Contains(r.logs.String(), `"msg":"stopped"`) {
			t.Errorf("no stopped line in log:\n%s", r.logs)
		}
	})
}
