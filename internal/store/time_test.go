package store

import (
	"testing"
	"time"
)

func TestCeilMicro(t *testing.T) {
	base := time.Date(2025, 3, 1, 12, 0, 0, 5_000, time.UTC) // whole microseconds
	tests := []struct {
		in, want time.Time
	}{
		{base, base},
		{base.Add(1), base.Add(time.Microsecond)},
		{base.Add(999), base.Add(time.Microsecond)},
		{base.Add(-1), base},
		{time.Unix(-1, 1), time.Unix(-1, 1000)}, // before 1970: still rounds up
	}
	for _, tc := range tests {
		if got := CeilMicro(tc.in); !got.Equal(tc.want) {
			t.Errorf("CeilMicro(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestStoredTime(t *testing.T) {
	in := time.Date(2025, 3, 1, 13, 0, 0, 5_999, time.FixedZone("CET", 3600))
	want := time.Date(2025, 3, 1, 12, 0, 0, 5_000, time.UTC)
	got := StoredTime(in)
	if got != want { // == : the location must be UTC as well
		t.Errorf("StoredTime(%v) = %v, want %v", in, got, want)
	}
}

func TestTimeOrNow(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	if got := TimeOrNow(at); !got.Equal(at) {
		t.Errorf("TimeOrNow(%v) = %v", at, got)
	}
	before := time.Now()
	got := TimeOrNow(time.Time{})
	if got.Before(before) || got.After(time.Now()) {
		t.Errorf("TimeOrNow(zero) = %v, not now", got)
	}
}
