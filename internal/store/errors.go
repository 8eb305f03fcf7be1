package store

import (
	"errors"
	"fmt"
)

// Errors every backend returns (wrapped) so callers can test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrConflict: the org's policy version is not the one the caller read
	// (optimistic concurrency for Save & Apply).
	ErrConflict = errors.New("version conflict")
)

// CheckFound turns the outcome of looking up one org or user (kind "org"
// or "user") into the error a change that needs it returns: err from the
// lookup itself, ErrNotFound if there was no such row, else nil.
func CheckFound(kind, name string, found bool, err error) error {
	if err != nil {
		return fmt.Errorf("look up %s %q: %w", kind, name, err)
	}
	if !found {
		return fmt.Errorf("%s %q: %w", kind, name, ErrNotFound)
	}
	return nil
}

// VersionConflict is the error of a Save & Apply that expected version
// expect of an org's policy, found at version current.
func VersionConflict(current, expect int64) error {
	return fmt.Errorf("the policy is at version %d, not %d: %w", current, expect, ErrConflict)
}
