package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestSystemdUnit checks deploy/httpsd.service for the hardening it
// promises and, where systemd-analyze exists, has systemd verify it.
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile("deploy/httpsd.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for _, want := range []string{
		"DynamicUser=yes", "StateDirectory=httpsd", "Environment=HTTPSD_DATA_DIR=/var/lib/httpsd",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"ProtectHome=yes", "PrivateTmp=yes", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
	} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("deploy/httpsd.service lacks the line %q", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit checked by content only")
		return
	}
	// verify checks that ExecStart's binary exists: point it at this test binary.
	self, _ := os.Executable()
	file := filepath.Join(t.TempDir(), "httpsd.service")
	os.WriteFile(file, []byte(strings.ReplaceAll(unit, "/usr/local/bin/httpsd", self)), 0o644)
	if out, err := exec.Command(analyze, "verify", file).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify = %v:\n%s", err, out)
	}
}

// TestKubernetesManifests parses deploy/kubernetes/*.yaml and checks what
// they promise: three non-root replicas with a read-only root file
// system, probes on the admin listener's /healthz and /readyz, Secret
// keys and ports that match, Redis as its Service names it, and a
// config.yaml that httpsd loads.
func TestKubernetesManifests(t *testing.T) {
	files, _ := filepath.Glob("deploy/kubernetes/*.yaml")
	docs := map[string]map[string]any{} // "Kind/name"
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			docs[fmt.Sprint(doc["kind"], "/", dig(doc, "metadata", "name"))] = doc
		}
	}
	for _, want := range []string{"Deployment/httpsd", "Service/httpsd", "Secret/httpsd", "ConfigMap/httpsd",
		"Deployment/redis", "Service/redis", "PersistentVolumeClaim/redis"} {
		if docs[want] == nil {
			t.Errorf("deploy/kubernetes lacks %s", want)
		}
	}
	if t.Failed() {
		return
	}
	dep := docs["Deployment/httpsd"]
	pod := dig(dep, "spec", "template", "spec")
	c := dig(pod, "containers", 0)
	tests := []struct {
		what string
		got  any
		want any
	}{
		{"replicas", dig(dep, "spec", "replicas"), 3},
		{"runAsNonRoot", dig(pod, "securityContext", "runAsNonRoot"), true},
		{"readOnlyRootFilesystem", dig(c, "securityContext", "readOnlyRootFilesystem"), true},
		{"allowPrivilegeEscalation", dig(c, "securityContext", "allowPrivilegeEscalation"), false},
		{"liveness probe", fmt.Sprint(dig(c, "livenessProbe", "exec", "command")), "[/httpsd health -url http://127.0.0.1:9090/healthz]"},
		{"readiness probe", fmt.Sprint(dig(c, "readinessProbe", "exec", "command")), "[/httpsd health -url http://127.0.0.1:9090/readyz]"},
		{"Service 443 to", dig(docs["Service/httpsd"], "spec", "ports", 0, "targetPort"), dig(c, "ports", 0, "name")},
		{"Service 80 to", dig(docs["Service/httpsd"], "spec", "ports", 1, "targetPort"), dig(c, "ports", 1, "name")},
		{"Redis non-root", dig(docs["Deployment/redis"], "spec", "template", "spec", "securityContext", "runAsNonRoot"), true},
		{"Redis port", dig(docs["Service/redis"], "spec", "ports", 0, "port"), 6379},
	}
	for _, tt := range tests {
		if fmt.Sprint(tt.got) != fmt.Sprint(tt.want) {
			t.Errorf("%s = %v, want %v", tt.what, tt.got, tt.want)
		}
	}
	env := map[string]string{}
	secret := dig(docs["Secret/httpsd"], "stringData").(map[string]any)
	for _, e := range dig(c, "env").([]any) {
		name := fmt.Sprint(dig(e, "name"))
		if ref := dig(e, "valueFrom", "secretKeyRef", "key"); ref != nil {
			if secret[fmt.Sprint(ref)] == nil {
				t.Errorf("env %s refers to Secret key %v, which the Secret lacks", name, ref)
			}
			env[name] = strings.Repeat("ab", 32) // what openssl rand -hex 32 prints
			continue
		}
		env[name] = fmt.Sprint(dig(e, "value"))
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(file, []byte(fmt.Sprint(dig(docs["ConfigMap/httpsd"], "data", "config.yaml"))), 0o600)
	cfg, err := loadConfig(file, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("the ConfigMap's config.yaml with the Deployment's environment: %v", err)
	}
	if want := "redis://redis:6379/0"; cfg.TLS.ACME.Storage.URL != want || !cfg.TLS.SessionTickets.Shared {
		t.Errorf("config: storage %q, shared tickets %v; want %s (the Redis Service) and true", cfg.TLS.ACME.Storage.URL, cfg.TLS.SessionTickets.Shared, want)
	}
	if _, _, err := clusterSecrets(cfg); err != nil {
		t.Errorf("secrets from the Deployment's environment: %v", err)
	}
}

// dig walks a decoded YAML document by map keys and list indexes; nil
// when a step is missing.
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}
