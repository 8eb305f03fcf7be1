package store

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPageSize(t *testing.T) {
	for limit, want := range map[int]int{-5: DefaultLimit, 0: DefaultLimit, 1: 1, 250: 250} {
		if got := (ActivityFilter{Limit: limit}).PageSize(); got != want {
			t.Errorf("ActivityFilter{Limit: %d}.PageSize() = %d, want %d", limit, got, want)
		}
		if got := (DecisionFilter{Limit: limit}).PageSize(); got != want {
			t.Errorf("DecisionFilter{Limit: %d}.PageSize() = %d, want %d", limit, got, want)
		}
	}
	if DefaultLimit != 100 {
		t.Errorf("DefaultLimit = %d; the Store contract says Limit 0 means 100", DefaultLimit)
	}
}

func TestActivityToRecord(t *testing.T) {
	tests := []struct {
		name string
		act  Activity
		org  string
		want *Activity // nil: records nothing
	}{
		{"no kind records nothing", Activity{Org: "acme", Actor: "alice"}, "acme", nil},
		{"takes the change's org", Activity{Kind: KindMemberAdd, Actor: "alice"}, "acme",
			&Activity{Kind: KindMemberAdd, Actor: "alice", Org: "acme"}},
		{"keeps its own org", Activity{Kind: KindSignIn, Org: "other"}, "acme", &Activity{Kind: KindSignIn, Org: "other"}},
		{"no org anywhere", Activity{Kind: KindUserPassword}, "", &Activity{Kind: KindUserPassword}},
	}
	for _, tc := range tests {
		var got *Activity
		if rec, ok := ActivityToRecord(tc.act, tc.org); ok {
			got = &rec
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", tc.name, diff)
		}
	}
}
