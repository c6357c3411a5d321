package server

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// newErrorLog returns an http.Server.ErrorLog that writes through logger:
// connections dropped by clients, which any public server sees all day,
// at debug; everything else at warn.
func newErrorLog(logger *slog.Logger) *log.Logger {
	return log.New(errorLogWriter{logger}, "", 0)
}

type errorLogWriter struct {
	logger *slog.Logger
}

func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if isClientNoise(msg) {
		level = slog.LevelDebug
	}
	w.logger.Log(context.Background(), level, msg, "from", "http.Server")
	return len(p), nil
}

func isClientNoise(msg string) bool {
	for _, s := range []string{"TLS handshake error", "error reading preface", "connection reset by peer", "broken pipe", "i/o timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
