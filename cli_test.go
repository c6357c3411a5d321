package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCmd runs a command that ends by itself and returns its exit code and
// output.
func runCmd(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"httpsd"}, args...), env(vars), &out, &errOut)
	if err != nil {
		errOut.WriteString(err.Error())
	}
	return exitCode(err), out.String(), errOut.String()
}

func TestCommands(t *testing.T) {
	ca := newTestCA(t)
	cert, key := ca.leaf("ok", time.Now().Add(90*24*time.Hour), "ok.test")
	goodFiles := filesConfig(t, "", [2]string{cert, key})
	missing := filepath.Join(t.TempDir(), "missing.crt")
	badFiles := filesConfig(t, "", [2]string{missing, key}, [2]string{key, cert})
	corruptCA := filepath.Join(t.TempDir(), "data") // 0700: t.TempDir is 0777 &^ umask
	os.Mkdir(corruptCA, 0o700)
	os.WriteFile(filepath.Join(corruptCA, "ca.crt"), []byte("junk"), 0o644)
	os.WriteFile(filepath.Join(corruptCA, "ca.key"), []byte("junk"), 0o600)
	newData := filepath.Join(t.TempDir(), "data")
	oldCert, oldKey := ca.leaf("old", time.Now().Add(-time.Hour), "old.test")
	expiredFiles := filesConfig(t, "", [2]string{cert, key}, [2]string{oldCert, oldKey})

	tests := []struct {
		name string
		vars map[string]string
		args []string
		code int
		want []string // substrings of stdout+stderr
	}{
		{"version", nil, []string{"version"}, 0, []string{"httpsd dev go1."}},
		{"help", nil, []string{"-h"}, 0, []string{"Usage:", "httpsd check"}},
		{"check help", nil, []string{"check", "-h"}, 0, []string{"Usage:"}},
		{"unknown command", nil, []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`, "Usage:"}},
		{"unknown flag", nil, []string{"-port", "1"}, 2, []string{"flag provided but not defined: -port"}},
		{"extra argument", nil, []string{"check", "-config", "config.yaml", "more"}, 2, []string{`unexpected argument "more"`}},
		{"missing config file", nil, []string{"check", "-config", "nope.yaml"}, 2, []string{"config: read nope.yaml: no such file"}},
		{"check defaults writes nothing", map[string]string{"HTTPSD_DATA_DIR": newData}, []string{"check", "-config", "config.yaml"}, 0,
			[]string{"local CA: none yet; serve will create " + newData + "/ca.crt", "config.yaml: ok (source self-signed"}},
		{"check env config", map[string]string{"HTTPSD_CONFIG": goodFiles}, []string{"check"}, 0, []string{goodFiles + ": ok (source files, hosts ok.test"}},
		{"check bad config", nil, []string{"check", "-config", "testdata/bad-many.yaml"}, 2, []string{"tls.hsts: unknown key", "log.level: must be one of"}},
		{"check bad files", nil, []string{"check", "-config", badFiles}, 2, []string{"certs: read " + missing, "no PEM certificate found"}},
		{"check corrupt CA", map[string]string{"HTTPSD_DATA_DIR": corruptCA}, []string{"check"}, 2, []string{"certs: local CA:", "no PEM certificate found"}},
		{"serve bad files", nil, []string{"-config", badFiles}, 2, []string{"certs: read " + missing}},
		{"serve corrupt CA", map[string]string{"HTTPSD_DATA_DIR": corruptCA, "HTTPSD_LISTEN_HTTPS": "127.0.0.1:0"}, []string{"serve"}, 2, []string{"certs: local CA:"}},
		{"certs files", nil, []string{"certs", "-config", goodFiles}, 0, []string{"SOURCE", "NOT AFTER", "files ", "ok.test", "ECDSA P-256", "test CA", "DAYS LEFT", cert}},
		{"certs expired", nil, []string{"certs", "-config", expiredFiles}, 1, []string{"old.test", "EXPIRED", "1 certificate(s) expired"}},
		{"certs no CA yet", map[string]string{"HTTPSD_DATA_DIR": newData}, []string{"certs"}, 0, []string{"local CA: none yet"}},
		{"serve bad env", map[string]string{"HTTPSD_LOG_LEVEL": "chatty"}, []string{"serve"}, 2, []string{"env HTTPSD_LOG_LEVEL: log.level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tt.vars, tt.args...)
			if code != tt.code {
				t.Errorf("httpsd %s = exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tt.args, " "), code, tt.code, stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout+stderr, w) {
					t.Errorf("httpsd %s output lacks %q:\nstdout: %s\nstderr: %s", strings.Join(tt.args, " "), w, stdout, stderr)
				}
			}
		})
	}
	if _, err := os.Stat(newData); !os.IsNotExist(err) {
		t.Errorf("check created %s; it must write nothing", newData)
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	vars := map[string]string{"HTTPSD_DATA_DIR": filepath.Join(t.TempDir(), "data"), "HTTPSD_LISTEN_HTTPS": addr, "HTTPSD_LISTEN_HTTP": ""}
	code, _, stderr := runCmd(t, vars, "serve", "-config", "testdata/e2e.yaml")
	if code != 1 || !strings.Contains(stderr, "listen.https "+addr+": ") || !strings.Contains(stderr, "address already in use") {
		t.Errorf("serve on a busy port = exit %d, %q; want exit 1 naming listen.https %s", code, stderr, addr)
	}
}

// TestCurl talks to the server with the real curl binary, as a user would.
func TestCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl not found: .ci/run installs it (apt-get install curl)")
	}
	vars, dataDir := dataDirEnv(t)
	r := startRun(t, vars, "-config", "testdata/e2e.yaml")
	p := port(r.https)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--http2"}, "<b>Hello world</b>! 200 2"},
		{[]string{"--http1.1"}, "<b>Hello world</b>! 200 1.1"},
		{[]string{"--tlsv1.3", "--http2"}, "<b>Hello world</b>! 200 2"},
	}
	for _, tt := range tests {
		args := append([]string{"-sS", "--max-time", "10", "--cacert", filepath.Join(dataDir, "ca.crt"),
			"--resolve", "localhost:" + p + ":127.0.0.1", "-w", " %{http_code} %{http_version}"}, tt.args...)
		args = append(args, "https://localhost:"+p+"/hello/world")
		out, err := exec.Command(curl, args...).CombinedOutput()
		if err != nil || string(out) != tt.want {
			t.Errorf("curl %s = %q, %v; want %q", strings.Join(args, " "), out, err, tt.want)
		}
	}
	r.stop(t)
}
