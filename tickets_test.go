package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/httpsd/httpsd/cluster"
	"github.com/httpsd/httpsd/internal/redistest"
)

// TestReplicasSessionResumption: a TLS session made with one replica
// resumes on another when the ticket keys are shared (TLS 1.3 and 1.2),
// and not without (each replica's own keys, as before).
func TestReplicasSessionResumption(t *testing.T) {
	redis := redistest.Start(t, "scripts/testdeps.sh")
	secret := strings.Repeat("5e", 32) // as openssl rand -hex 32 prints it
	replicas := func(shared bool) [2]*running {
		var rs [2]*running
		for i := range rs {
			vars, _ := dataDirEnv(t)
			vars["HTTPSD_TLS_ACME_STORAGE"] = redis.URL(0)
			vars["HTTPSD_TLS_ACME_STORAGE_PASSWORD"] = redis.Password
			if shared {
				vars["HTTPSD_TLS_SESSION_TICKETS_SHARED"] = "true"
				vars["HTTPSD_CLUSTER_SECRET"] = secret
			}
			rs[i] = startRun(t, vars, "-config", "testdata/e2e.yaml")
		}
		if shared {
			for _, r := range rs {
				waitLog(t, r, "cluster: session ticket keys applied", 10*time.Second)
			}
		}
		return rs
	}
	shared, own := replicas(true), replicas(false)
	tests := []struct {
		name    string
		rs      [2]*running
		version uint16
		want    bool
	}{
		{"shared keys, TLS 1.3", shared, tls.VersionTLS13, true},
		{"shared keys, TLS 1.2", shared, tls.VersionTLS12, true},
		{"own keys, TLS 1.3", own, tls.VersionTLS13, false},
		{"own keys, TLS 1.2", own, tls.VersionTLS12, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each replica has its own local CA: the client skips
			// verification, which a resumed handshake does not redo.
			conf := &tls.Config{ServerName: "localhost", InsecureSkipVerify: true, MaxVersion: tt.version,
				ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			var resumed []bool
			for _, r := range tt.rs {
				c, err := tls.Dial("tcp", r.https, conf)
				if err != nil {
					t.Fatal(err)
				}
				// TLS 1.3 sends the ticket after the handshake: read a response.
				io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
				io.ReadAll(c)
				resumed = append(resumed, c.ConnectionState().DidResume)
				c.Close()
			}
			if resumed[0] || resumed[1] != tt.want {
				t.Errorf("DidResume on replica A, then B = %v, want [false %v]", resumed, tt.want)
			}
		})
	}

	t.Run("no usable key in Redis", func(t *testing.T) {
		names, err := redis.Client(0).Keys(t.Context(), "httpsd:tickets:*").Result()
		if err != nil || len(names) != 1 {
			t.Fatalf("Redis holds ticket keys under %v (%v), want one key", names, err)
		}
		stored, _ := redis.Client(0).Get(t.Context(), names[0]).Bytes()
		for _, s := range []string{secret, strings.Repeat("a7", 32)} {
			store, err := cluster.New(cluster.Options{URL: redis.URL(0), Password: redis.Password})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			b, _ := decodeSecret(s)
			tk, _ := store.Tickets(cluster.TicketOptions{Secret: b, Apply: func([][32]byte) {}})
			keys, err := tk.Keys(t.Context())
			switch {
			case s != secret && len(keys) != 0:
				t.Errorf("another secret reads %d keys (%v), want none", len(keys), err)
			case s == secret && (err != nil || len(keys) == 0):
				t.Fatalf("the secret reads no keys: %v", err)
			case s == secret:
				for _, k := range keys {
					if bytes.Contains(stored, k[:]) {
						t.Errorf("the value in Redis contains a ticket key in clear")
					}
				}
				t.Logf("%s: %d bytes holding %d key(s), sealed with AES-256-GCM; another secret reads none", names[0], len(stored), len(keys))
			}
		}
	})
}
