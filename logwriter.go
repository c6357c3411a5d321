package main

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// logWriter takes every log line (access and error log) without ever
// making the caller wait on the output: Write appends the line to a buffer
// in memory, and a goroutine writes the buffer out every flushEvery, or
// sooner once it holds flushAt bytes. When the output cannot keep up (a
// pipe nobody reads, a full disk, a stalled journald) and the buffer holds
// maxBuffered bytes, lines are dropped and counted, and once the output
// drains again a line says how many (at most once per reportEvery). A
// line is never split.
type logWriter struct {
	out    io.Writer
	report func(dropped uint64) // logs that lines were dropped

	mu      sync.Mutex
	buf     []byte
	pending uint64 // dropped since the last report
	over    bool   // the report is being written: it may go over maxBuffered
	dropped atomic.Uint64
	kick    chan struct{} // a flush is wanted now
	idle    chan struct{} // receives after each write-out that left nothing behind
}

// Log buffer sizes and timings.
const (
	flushEvery  = 100 * time.Millisecond // how late a line may appear
	flushAt     = 64 << 10
	maxBuffered = 4 << 20
	reportEvery = 10 * time.Second
)

func newLogWriter(out io.Writer) *logWriter {
	return &logWriter{out: out, kick: make(chan struct{}, 1), idle: make(chan struct{}, 1), report: func(uint64) {}}
}

// Write takes one line; it never blocks on the output.
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if len(w.buf)+len(p) > maxBuffered && !w.over {
		w.pending++
		w.mu.Unlock()
		w.dropped.Add(1)
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	full := len(w.buf) >= flushAt
	w.mu.Unlock()
	if full {
		w.flushSoon()
	}
	return len(p), nil
}

// Dropped returns how many lines were dropped since start.
func (w *logWriter) Dropped() uint64 { return w.dropped.Load() }

func (w *logWriter) flushSoon() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run writes the buffer out until ctx is done; the write may block for
// as long as the output does, which only delays run.
func (w *logWriter) run(ctx context.Context) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	var spare []byte
	var lastReport time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
		w.mu.Lock()
		out := w.buf
		w.buf = spare[:0]
		w.mu.Unlock()
		if len(out) > 0 {
			w.out.Write(out)
		}
		spare = out
		w.mu.Lock()
		pending, empty := w.pending, len(w.buf) == 0
		if pending > 0 && time.Since(lastReport) >= reportEvery {
			w.pending = 0
		} else {
			pending = 0
		}
		w.mu.Unlock()
		if pending > 0 {
			lastReport = time.Now()
			w.mu.Lock()
			w.over = true
			w.mu.Unlock()
			w.report(pending) // appends a line, written out next time
			w.mu.Lock()
			w.over = false
			w.mu.Unlock()
			empty = false
		}
		if empty {
			select {
			case w.idle <- struct{}{}:
			default:
			}
		}
	}
}

// Flush waits until what was written before it is out, or ctx is done:
// the output may be stuck for good, and shutdown must not wait for it.
func (w *logWriter) Flush(ctx context.Context) error {
	select { // forget a write-out that happened before this call
	case <-w.idle:
	default:
	}
	w.flushSoon()
	select {
	case <-w.idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
