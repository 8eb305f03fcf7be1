//go:build unix

package client

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// permissionWarnings says when someone other than root could change or
// replace registry.json: the docs ask for a root-owned, read-only file in a
// root-owned directory.
func permissionWarnings(path string, fi fs.FileInfo) []string {
	var w []string
	const fix = "make it root-owned and read-only (sudo chown root %s && sudo chmod 0444 %s)"
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
		w = append(w, fmt.Sprintf("registry.json %s is owned by uid %d, not root; "+fix, path, st.Uid, path, path))
	}
	switch {
	case fi.Mode().Perm()&0o022 != 0:
		w = append(w, fmt.Sprintf("registry.json %s is writable by other users (mode %04o); "+fix, path, fi.Mode().Perm(), path, path))
	case os.Geteuid() != 0 && unix.Access(path, unix.W_OK) == nil:
		w = append(w, fmt.Sprintf("registry.json %s is writable by you; "+fix, path, path, path))
	}
	dir := filepath.Dir(path)
	if di, err := os.Stat(dir); err == nil {
		st, ok := di.Sys().(*syscall.Stat_t)
		sticky := di.Mode()&fs.ModeSticky != 0
		switch {
		case ok && st.Uid != 0:
			w = append(w, fmt.Sprintf("the directory %s of registry.json is owned by uid %d, not root: its owner can replace the file", dir, st.Uid))
		case di.Mode().Perm()&0o022 != 0 && !sticky:
			w = append(w, fmt.Sprintf("the directory %s of registry.json is writable by other users (mode %04o): they can replace the file", dir, di.Mode().Perm()))
		}
	}
	return w
}
