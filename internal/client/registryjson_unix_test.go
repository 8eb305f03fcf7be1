//go:build unix

package client

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadEnforcementWarnings(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "registry.json")
	writeFile(t, path, `{"allowedOrgs":["acme"]}`, 0o666)
	e, err := LoadEnforcement(path)
	if err != nil {
		t.Fatal(err)
	}
	if !containsAll(e.Warnings, "writable by other users (mode 0666)") {
		t.Errorf("a 0666 file: warnings %q", e.Warnings)
	}
	if os.Geteuid() != 0 {
		// The file is ours: it must be reported as not root-owned.
		if !containsAll(e.Warnings, "not root") {
			t.Errorf("a file of uid %d: warnings %q", os.Geteuid(), e.Warnings)
		}
		return
	}
	// As root, hand the file and the directory to another uid.
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	e, err = LoadEnforcement(path)
	if err != nil {
		t.Fatal(err)
	}
	if !containsAll(e.Warnings, "owned by uid 4242, not root", "directory "+dir+" of registry.json is owned by uid 4242") {
		t.Errorf("a file of uid 4242: warnings %q", e.Warnings)
	}
	if !e.Enforced {
		t.Error("a warning must not stop enforcement")
	}
}
