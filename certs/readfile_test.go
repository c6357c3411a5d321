package certs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) string {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, bytes.Repeat([]byte("x"), size), 0o600); err != nil {
			t.Fatal(err)
		}
		return file
	}
	small, limit, big := write("small", 10), write("limit", MaxFileSize), write("big", 2<<20)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o700)
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		file string
		size int    // when accepted
		want string // substring of the error; "" = accepted
	}{
		{small, 10, ""},
		{limit, MaxFileSize, ""},
		{big, 0, "certs: read " + big + ": larger than 1 MiB"},
		{sub, 0, "certs: read " + sub + ": not a regular file (a directory)"},
		{missing, 0, "certs: read " + missing + ": "},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			data, err := ReadFile(tt.file)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("ReadFile(%s) = %v, want %d bytes", tt.file, err, tt.size)
			case tt.want == "" && len(data) != tt.size:
				t.Errorf("ReadFile(%s) = %d bytes, want %d", tt.file, len(data), tt.size)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("ReadFile(%s) = %d bytes, %v; want an error containing %q", tt.file, len(data), err, tt.want)
			}
		})
	}
	if _, err := ReadFile(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v, want an error wrapping fs.ErrNotExist", err)
	}
}
