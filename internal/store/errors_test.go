package store

import (
	"errors"
	"testing"
)

func TestCheckFound(t *testing.T) {
	lookup := errors.New("connection reset")
	tests := []struct {
		name   string
		found  bool
		err    error
		want   string
		wantIs error
	}{
		{"found", true, nil, "", nil},
		{"missing", false, nil, `org "acme": not found`, ErrNotFound},
		{"lookup failed", false, lookup, `look up org "acme": connection reset`, lookup},
	}
	for _, tc := range tests {
		err := CheckFound("org", "acme", tc.found, tc.err)
		if got := errText(err); got != tc.want {
			t.Errorf("%s: CheckFound = %q, want %q", tc.name, got, tc.want)
		}
		if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
			t.Errorf("%s: %v is not %v", tc.name, err, tc.wantIs)
		}
		if got, want := errors.Is(err, ErrNotFound), tc.wantIs == ErrNotFound; got != want {
			t.Errorf("%s: errors.Is(%v, ErrNotFound) = %v, want %v", tc.name, err, got, want)
		}
	}
}

func TestVersionConflict(t *testing.T) {
	err := VersionConflict(4, 3)
	if got, want := err.Error(), "the policy is at version 4, not 3: version conflict"; got != want {
		t.Errorf("VersionConflict = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrConflict) {
		t.Errorf("%v is not ErrConflict", err)
	}
}
