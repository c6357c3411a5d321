// Package redistest runs a real redis-server for tests: on a free
// loopback port, with a password and its data in a temporary directory
// (append-only, so that a restart keeps it), stopped when the test ends.
// Tests stop and restart it to play outages.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process.
type Server struct {
	Addr     string // 127.0.0.1:PORT
	Password string
	dir      string
	t        testing.TB

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start installs redis-server if missing (with testdeps, the path of
// scripts/testdeps.sh from the test's package directory) and starts it.
func Start(t testing.TB, testdeps string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if out, err := exec.Command("bash", testdeps, "redis-server").CombinedOutput(); err != nil {
			t.Fatalf("redis-server is missing and could not be installed: %v\n%s", err, out)
		}
	}
	b := make([]byte, 16)
	rand.Read(b)
	s := &Server{Password: hex.EncodeToString(b), dir: t.TempDir(), t: t}
	for try := 0; ; try++ {
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		err := s.start()
		if err == nil {
			break
		}
		if try == 4 {
			t.Fatal(err)
		}
	}
	t.Cleanup(s.Stop)
	return s
}

// URL is redis://ADDR/db.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://%s/%d", s.Addr, db) }

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--requirepass", s.Password,
		"--dir", s.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
		"--logfile", filepath.Join(s.dir, "redis.log"), "--enable-debug-command", "local") // DEBUG SLEEP plays a slow server
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redistest: start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, Password: s.Password, DisableIdentity: true})
	defer rdb.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			break
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redistest: redis-server on %s exited: %s", s.Addr, log)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("redistest: redis-server on %s does not answer: %v", s.Addr, err)
		}
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// Stop kills the server (as a crash would; its data is on disk) and waits
// for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Restart starts the server again on the same port with the same data.
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	for try := 0; try < 50; try++ { // the port may linger a moment
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatal(err)
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client(db int) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr, Password: s.Password, DB: db, DisableIdentity: true, ContextTimeoutEnabled: true})
	s.t.Cleanup(func() { c.Close() })
	return c
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
