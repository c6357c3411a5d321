package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedWriter blocks every Write while closed is held, like a pipe that
// nobody reads, then takes everything.
type gatedWriter struct {
	gate sync.RWMutex
	out  syncLog
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.gate.RLock()
	defer g.gate.RUnlock()
	return g.out.Write(p)
}

func TestLogWriterDropsAndReports(t *testing.T) {
	g := &gatedWriter{}
	g.gate.Lock() // the output is stuck
	w := newLogWriter(g)
	logger := slog.New(slog.NewTextHandler(w, nil))
	w.report = func(n uint64) { logger.Warn("the log output could not keep up; lines were dropped", "dropped", n) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.run(ctx)

	line := strings.Repeat("x", 1000)
	const lines = 2 * maxBuffered / 1000
	start := time.Now()
	for i := range lines {
		fmt.Fprintf(w, "%06d %s\n", i, line)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("%d writes with the output stuck took %v, want them not to wait for it", lines, took)
	}
	if w.Dropped() == 0 {
		t.Fatalf("Dropped() = 0 after writing %d MiB with the output stuck, want lines dropped", lines/1000)
	}
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), 100*time.Millisecond)
	if err := w.Flush(flushCtx); err == nil {
		t.Error("Flush with the output stuck = nil, want the context's error")
	}
	cancelFlush()

	g.gate.Unlock() // the output drains
	if !eventually(5*time.Second, func() bool { return strings.Contains(g.out.String(), "lines were dropped") }) {
		t.Fatalf("no line saying lines were dropped once the output drained")
	}
	for _, l := range strings.Split(strings.TrimSuffix(g.out.String(), "\n"), "\n") {
		if !strings.Contains(l, "lines were dropped") && len(l) != len(line)+7 {
			t.Errorf("a line was split or merged: %d bytes, want %d", len(l), len(line)+7)
			break
		}
	}
	if !strings.Contains(g.out.String(), fmt.Sprintf("dropped=%d", w.Dropped())) {
		t.Errorf("report does not give the %d dropped lines:\n%s", w.Dropped(), g.out.String()[len(g.out.String())-300:])
	}
}
