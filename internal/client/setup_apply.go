package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// AppliedFile is what --write did to one file.
type AppliedFile struct {
	Path      string // on the target system
	Backup    string // the previous content, "" when there was none
	Created   bool
	Unchanged bool
}

// SetupResult is what --write did.
type SetupResult struct {
	Files []AppliedFile
	// Ran are the commands run; Skipped those not run (with --root, or
	// --no-restart), which the user must run.
	Ran     [][]string
	Skipped [][]string
}

// Apply writes the plan's files under root, keeping a timestamped backup
// of each file it replaces, then runs the After commands through run (nil:
// run none, report them as skipped). A file whose content is already
// right is left alone. On an error, files already written stay written and
// are listed, so that the undo instructions still apply.
func (p SetupPlan) Apply(root string, now time.Time, run func([]string) error) (SetupResult, error) {
	var res SetupResult
	if root == "" {
		root = "/"
	}
	stamp := now.UTC().Format("20060102T150405Z")
	changed := false
	for _, f := range p.Files {
		af, err := applyFile(root, f, stamp)
		if err != nil {
			return res, err
		}
		res.Files = append(res.Files, af)
		changed = changed || !af.Unchanged
	}
	for _, c := range p.After {
		if run == nil || !changed {
			if changed {
				res.Skipped = append(res.Skipped, c)
			}
			continue
		}
		if err := run(c); err != nil {
			res.Skipped = append(res.Skipped, c)
			return res, fmt.Errorf("%s: %w", strings.Join(c, " "), err)
		}
		res.Ran = append(res.Ran, c)
	}
	return res, nil
}

func applyFile(root string, f FileChange, stamp string) (AppliedFile, error) {
	af := AppliedFile{Path: f.Path}
	full := filepath.Join(root, f.Path)
	mode := f.Mode
	if f.Secret {
		mode = 0o600
	}
	old, err := os.ReadFile(full)
	switch {
	case errors.Is(err, os.ErrNotExist):
		af.Created = true
	case err != nil:
		return af, fmt.Errorf("read %s: %w", full, err)
	case bytes.Equal(old, f.Content):
		af.Unchanged = true
		return af, nil
	default:
		fi, err := os.Stat(full)
		if err != nil {
			return af, err
		}
		if !f.Secret {
			mode = fi.Mode().Perm() // keep what the admin chose
		}
		backup := full + ".regward-backup-" + stamp
		if err := copyFile(backup, old, fi.Mode().Perm()); err != nil {
			return af, fmt.Errorf("back up %s: %w", full, err)
		}
		af.Backup = f.Path + ".regward-backup-" + stamp
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return af, fmt.Errorf("create %s: %w", filepath.Dir(full), err)
	}
	if err := writeAtomic(full, f.Content, mode); err != nil {
		return af, fmt.Errorf("write %s: %w", full, err)
	}
	return af, nil
}

// copyFile writes a backup; an existing file of that name is never
// overwritten (two runs in the same second keep the first backup).
func copyFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Report writes what changed and how to undo it.
func (r SetupResult) Report(w io.Writer, root string) {
	show := func(p string) string {
		if root == "" || root == "/" {
			return p
		}
		return filepath.Join(root, p)
	}
	var undo []string
	for _, f := range r.Files {
		switch {
		case f.Unchanged:
			fmt.Fprintf(w, "unchanged %s (already set)\n", show(f.Path))
		case f.Created:
			fmt.Fprintf(w, "created   %s\n", show(f.Path))
			undo = append(undo, "rm "+shellQuote(show(f.Path)))
		default:
			fmt.Fprintf(w, "changed   %s (previous content in %s)\n", show(f.Path), show(f.Backup))
			undo = append(undo, "mv "+shellQuote(show(f.Backup))+" "+shellQuote(show(f.Path)))
		}
	}
	for _, c := range r.Ran {
		fmt.Fprintf(w, "ran       %s\n", strings.Join(c, " "))
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintln(w, "\nnow run, as root:")
		for _, c := range r.Skipped {
			fmt.Fprintf(w, "  %s\n", strings.Join(c, " "))
		}
	}
	if len(undo) == 0 {
		fmt.Fprintln(w, "\nnothing changed")
		return
	}
	fmt.Fprintln(w, "\nto undo, as root:")
	for _, u := range undo {
		fmt.Fprintf(w, "  %s\n", u)
	}
	for _, c := range append(r.Ran, r.Skipped...) {
		fmt.Fprintf(w, "  %s\n", strings.Join(c, " "))
	}
}
