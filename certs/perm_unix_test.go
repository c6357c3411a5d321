//go:build unix

package certs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLocalCAPermissions(t *testing.T) {
	now := time.Now()
	chmod := func(t *testing.T, file string, mode os.FileMode) {
		t.Helper()
		if err := os.Chmod(file, mode); err != nil {
			t.Fatal(err)
		}
	}
	// moveKey replaces dir/ca.key by a symlink to a copy elsewhere with mode.
	moveKey := func(t *testing.T, dir string, mode os.FileMode) {
		t.Helper()
		target := filepath.Join(t.TempDir(), "ca.key")
		if err := os.Rename(filepath.Join(dir, CAKeyFile), target); err != nil {
			t.Fatal(err)
		}
		chmod(t, target, mode)
		if err := os.Symlink(target, filepath.Join(dir, CAKeyFile)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string // with DIR and KEY for the paths; "" = accepted
	}{
		{"key 0600", func(t *testing.T, dir string) {}, ""},
		{"key 0400", func(t *testing.T, dir string) { chmod(t, filepath.Join(dir, CAKeyFile), 0o400) }, ""},
		{"key 0644", func(t *testing.T, dir string) { chmod(t, filepath.Join(dir, CAKeyFile), 0o644) },
			"certs: KEY is readable by others (mode 0644); run: chmod 600 KEY"},
		{"key 0640", func(t *testing.T, dir string) { chmod(t, filepath.Join(dir, CAKeyFile), 0o640) },
			"certs: KEY is readable by others (mode 0640); run: chmod 600 KEY"},
		{"key 0620", func(t *testing.T, dir string) { chmod(t, filepath.Join(dir, CAKeyFile), 0o620) },
			"certs: KEY is writable by others (mode 0620); run: chmod 600 KEY"},
		// A Kubernetes Secret: a symlink (mode 0777) to a file with defaultMode.
		{"symlink to key 0400", func(t *testing.T, dir string) { moveKey(t, dir, 0o400) }, ""},
		{"symlink to key 0644", func(t *testing.T, dir string) { moveKey(t, dir, 0o644) },
			"certs: KEY is readable by others (mode 0644); run: chmod 600 KEY"},
		{"dir 0755", func(t *testing.T, dir string) { chmod(t, dir, 0o755) }, ""},
		{"dir 0777", func(t *testing.T, dir string) { chmod(t, dir, 0o777) },
			"certs: DIR is writable by others (mode 0777); run: chmod 700 DIR"},
		{"dir 0770", func(t *testing.T, dir string) { chmod(t, dir, 0o770) },
			"certs: DIR is writable by others (mode 0770); run: chmod 700 DIR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if _, err := LocalCA(dir, []string{"localhost"}, now); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, dir)
			want := strings.NewReplacer("DIR", dir, "KEY", filepath.Join(dir, CAKeyFile)).Replace(tt.want)
			_, err := LocalCA(dir, []string{"localhost"}, now)
			_, checkErr := CheckLocalCA(dir, now)
			for name, err := range map[string]error{"LocalCA": err, "CheckLocalCA": checkErr} {
				switch {
				case want == "" && err != nil:
					t.Errorf("%s = %v, want no error", name, err)
				case want != "" && (err == nil || err.Error() != want):
					t.Errorf("%s = %v, want %q", name, err, want)
				}
			}
		})
	}
}
