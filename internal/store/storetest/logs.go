package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regward/regward/internal/store"
)

// seedActivity appends n entries spread over orgs, kinds and actors, one
// minute apart, and returns them as stored (with IDs), oldest first.
func seedActivity(t *testing.T, s store.Store, n int) []store.Activity {
	t.Helper()
	ctx := context.Background()
	orgs := []string{"acme", "beta"}
	kinds := []string{store.KindSignIn, store.KindSignInFailed, store.KindPolicyApply}
	actors := []string{"alice", "bob", "carol", "dave", "eve"}
	var in []store.Activity
	for i := range n {
		a := store.Activity{
			Org: orgs[i%len(orgs)], Time: at(time.Duration(i) * time.Minute), Actor: actors[i%len(actors)],
			Kind: kinds[i%len(kinds)], Target: fmt.Sprintf("target-%d", i), Summary: fmt.Sprintf("entry %d", i),
			Version: int64(i),
		}
		if a.Kind == store.KindPolicyApply {
			a.Diff = json.RawMessage(fmt.Sprintf(`[{"path":"registryAccess.registries[%d].host","after":"r%d.example"}]`, i, i))
		}
		must(t, "AppendActivity", s.AppendActivity(ctx, a))
		in = append(in, a)
	}
	got, err := s.ListActivity(ctx, store.ActivityFilter{Limit: n + 10})
	must(t, "ListActivity", err)
	slices.Reverse(got)
	if diff := cmp.Diff(in, got, msTime, ignoreActivityID); diff != "" {
		t.Fatalf("all activity, oldest first (-want +got):\n%s", diff)
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Fatalf("activity IDs do not grow: %d after %d", got[i].ID, got[i-1].ID)
		}
	}
	for _, a := range got {
		wantUTC(t, "Activity.Time", a.Time)
	}
	return got
}

// matchActivity is the filter's meaning, written plainly.
func matchActivity(a store.Activity, f store.ActivityFilter) bool {
	return (f.Org == "" || a.Org == f.Org) &&
		(len(f.Kinds) == 0 || slices.Contains(f.Kinds, a.Kind)) &&
		(f.Actor == "" || a.Actor == f.Actor) &&
		(f.Since.IsZero() || !a.Time.Before(f.Since)) &&
		(f.Until.IsZero() || a.Time.Before(f.Until)) &&
		(f.Before == 0 || a.ID < f.Before)
}

func testActivityFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	all := seedActivity(t, s, 60)
	filters := []store.ActivityFilter{
		{Org: "acme"},
		{Org: "beta", Limit: 7},
		{Kinds: []string{store.KindSignInFailed}},
		{Org: "acme", Kinds: []string{store.KindSignIn, store.KindPolicyApply}},
		{Actor: "carol"},
		{Org: "beta", Actor: "bob", Kinds: []string{store.KindSignIn}},
		{Since: at(10 * time.Minute)},
		{Until: at(10 * time.Minute)},
		{Since: at(10 * time.Minute), Until: at(20 * time.Minute), Org: "acme"},
		{Before: all[30].ID},
		{Before: all[30].ID, Org: "acme", Limit: 3},
		{Actor: "nobody"},
		{Org: "nope"},
	}
	for _, f := range filters {
		var want []store.Activity
		for i := len(all) - 1; i >= 0; i-- {
			if matchActivity(all[i], f) {
				want = append(want, all[i])
			}
		}
		if f.Limit > 0 && len(want) > f.Limit {
			want = want[:f.Limit]
		}
		got, err := s.ListActivity(ctx, f)
		must(t, "ListActivity", err)
		if diff := cmp.Diff(want, got, msTime, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("ListActivity(%+v) (-want +got):\n%s", f, diff)
		}
	}
}

func testActivityPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 250
	for i := range n {
		must(t, "AppendActivity", s.AppendActivity(ctx, store.Activity{Org: "acme", Time: at(time.Duration(i) * time.Second), Actor: "alice", Kind: store.KindSignIn}))
	}
	// Limit 0 means the default page of 100.
	page, err := s.ListActivity(ctx, store.ActivityFilter{Org: "acme"})
	must(t, "ListActivity", err)
	if len(page) != 100 {
		t.Errorf("ListActivity without a limit returned %d entries, want the default 100", len(page))
	}
	var seen []int64
	var before int64
	for range n {
		page, err := s.ListActivity(ctx, store.ActivityFilter{Org: "acme", Before: before, Limit: 40})
		must(t, "ListActivity", err)
		if len(page) == 0 {
			break
		}
		for _, a := range page {
			seen = append(seen, a.ID)
		}
		before = page[len(page)-1].ID
	}
	if len(seen) != n {
		t.Fatalf("paging with Before saw %d entries, want %d", len(seen), n)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Fatalf("paging is not newest first without repeats: ID %d after %d", seen[i], seen[i-1])
		}
	}
}

func testActivityValidation(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.AppendActivity(ctx, store.Activity{Org: "acme", Time: t0, Actor: "alice"}); err == nil {
		t.Error("AppendActivity without a kind succeeded")
	}
	if err := s.AppendActivity(ctx, store.Activity{Org: "acme", Time: t0, Kind: store.KindSignIn, Diff: json.RawMessage("{oops")}); err == nil {
		t.Error("AppendActivity with a diff that is not JSON succeeded")
	}
	if n := len(activity(t, s, "")); n != 0 {
		t.Fatalf("rejected entries were written: %d", n)
	}
	// A zero time means now.
	before := time.Now().Add(-time.Second)
	must(t, "AppendActivity", s.AppendActivity(ctx, store.Activity{Org: "acme", Actor: "alice", Kind: store.KindSignIn}))
	after := time.Now().Add(time.Second)
	got := activity(t, s, "acme")
	if len(got) != 1 || got[0].Time.Before(before) || got[0].Time.After(after) {
		t.Errorf("entry without a time = %+v, want one stamped between %v and %v", got, before, after)
	}
}

// decisions makes n decisions over two orgs, five users and three hosts,
// one second apart, every field set.
func decisions(n int) []store.DecisionRecord {
	ds := make([]store.DecisionRecord, n)
	for i := range ds {
		ds[i] = store.DecisionRecord{
			Time: at(time.Duration(i) * time.Second), Org: []string{"acme", "beta"}[i%2],
			User: fmt.Sprintf("u%d", i%5), Host: []string{"docker.io", "ghcr.io", "quay.io"}[i%3], Port: 443,
			Method: "GET", Action: "pull", Image: fmt.Sprintf("docker.io/library/img%d", i),
			Digest: fmt.Sprintf("sha256:%064d", i), Category: "official", Rule: "registryAccess",
			Allowed: i%4 != 0, Reason: fmt.Sprintf("reason %d", i), Gateway: "gw-1",
		}
	}
	return ds
}

func appendAndList(t *testing.T, s store.Store, ds []store.DecisionRecord) []store.DecisionRecord {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	must(t, "AppendDecisions", s.AppendDecisions(ctx, ds))
	t.Logf("AppendDecisions of %d records: %v", len(ds), time.Since(start))
	got, err := s.ListDecisions(ctx, store.DecisionFilter{Limit: len(ds) + 10})
	must(t, "ListDecisions", err)
	slices.Reverse(got)
	if diff := cmp.Diff(ds, got, msTime, cmpopts.IgnoreFields(store.DecisionRecord{}, "ID")); diff != "" {
		t.Fatalf("all decisions, oldest first (-want +got):\n%s", diff)
	}
	for i := range got {
		if got[i].ID == 0 || (i > 0 && got[i].ID <= got[i-1].ID) {
			t.Fatalf("decision IDs do not grow: %d after %d", got[i].ID, got[max(i-1, 0)].ID)
		}
		wantUTC(t, "DecisionRecord.Time", got[i].Time)
	}
	return got
}

func testDecisions(t *testing.T, s store.Store) {
	ctx := context.Background()
	must(t, "AppendDecisions of nothing", s.AppendDecisions(ctx, nil))
	// A record with only the required fields round-trips too.
	minimal := []store.DecisionRecord{{Time: t0, Org: "acme", Host: "evil.example", Rule: "registryAccess"}}
	appendAndList(t, s, minimal)
	must(t, "PruneDecisions", func() error { _, err := s.PruneDecisions(ctx, at(time.Hour)); return err }())
	appendAndList(t, s, decisions(1000))
}

func matchDecision(d store.DecisionRecord, f store.DecisionFilter) bool {
	return (f.Org == "" || d.Org == f.Org) &&
		(f.User == "" || d.User == f.User) &&
		(f.Host == "" || d.Host == f.Host) &&
		(f.Allowed == nil || d.Allowed == *f.Allowed) &&
		(f.Since.IsZero() || !d.Time.Before(f.Since)) &&
		(f.Until.IsZero() || d.Time.Before(f.Until)) &&
		(f.Before == 0 || d.ID < f.Before)
}

func testDecisionFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	all := appendAndList(t, s, decisions(400))
	yes, no := true, false
	filters := []store.DecisionFilter{
		{Org: "acme", Limit: 1000},
		{Org: "beta", Limit: 10},
		{User: "u3", Limit: 1000},
		{Host: "ghcr.io", Org: "acme", Limit: 1000},
		{Allowed: &no, Limit: 1000},
		{Allowed: &yes, Org: "beta", User: "u1", Limit: 1000},
		{Since: at(100 * time.Second), Until: at(150 * time.Second), Limit: 1000},
		{Until: at(10 * time.Second), Limit: 1000},
		{Before: all[200].ID, Limit: 5},
		{Before: all[200].ID, Org: "acme", Allowed: &no, Limit: 1000},
		{Host: "nowhere.example", Limit: 1000},
		{},
	}
	for _, f := range filters {
		var want []store.DecisionRecord
		for i := len(all) - 1; i >= 0; i-- {
			if matchDecision(all[i], f) {
				want = append(want, all[i])
			}
		}
		limit := f.Limit
		if limit <= 0 {
			limit = 100
		}
		if len(want) > limit {
			want = want[:limit]
		}
		got, err := s.ListDecisions(ctx, f)
		must(t, "ListDecisions", err)
		if diff := cmp.Diff(want, got, msTime, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("ListDecisions(%+v) (-want +got):\n%s", f, diff)
		}
	}
}

func testPruneDecisions(t *testing.T, s store.Store) {
	ctx := context.Background()
	appendAndList(t, s, decisions(300))
	// Decision i is at at(i s); cut exactly at decision 100, at the precision
	// every backend keeps.
	cut := at(100 * time.Second).Truncate(time.Millisecond)
	n, err := s.PruneDecisions(ctx, cut)
	must(t, "PruneDecisions", err)
	if n != 100 {
		t.Errorf("PruneDecisions removed %d, want 100", n)
	}
	left, err := s.ListDecisions(ctx, store.DecisionFilter{Limit: 1000})
	must(t, "ListDecisions", err)
	if len(left) != 200 {
		t.Fatalf("%d decisions left, want 200", len(left))
	}
	for _, d := range left {
		if d.Time.Before(cut) {
			t.Errorf("decision at %v survived a prune before %v", d.Time, cut)
		}
	}
	if n, err := s.PruneDecisions(ctx, cut); err != nil || n != 0 {
		t.Errorf("a second prune removed %d, %v; want 0", n, err)
	}
}

func testTimePrecision(t *testing.T, s store.Store) {
	ctx := context.Background()
	times := []time.Time{
		time.Date(2024, 2, 29, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2025, 6, 1, 0, 0, 0, 1_000_000, time.FixedZone("PDT", -7*3600)),
		time.Date(2099, 12, 31, 12, 30, 0, 123_000_000, time.FixedZone("IST", 5*3600+1800)),
		time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i, want := range times {
		name := fmt.Sprintf("user%d", i)
		must(t, "CreateUser", s.CreateUser(ctx, store.User{Username: name, PasswordHash: "h", CreatedAt: want}))
		u, err := s.GetUser(ctx, name)
		must(t, "GetUser", err)
		if !u.CreatedAt.Truncate(time.Millisecond).Equal(want.Truncate(time.Millisecond)) {
			t.Errorf("%v came back as %v", want, u.CreatedAt)
		}
		wantUTC(t, "User.CreatedAt", u.CreatedAt)
	}
}

// testConcurrentWriters writes from many goroutines at once while others
// read: a backend must serialize or retry internally, never fail with "busy".
func testConcurrentWriters(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOrg(t, s, "acme")
	createUser(t, s, "alice")
	const workers, iterations = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*iterations*6)
	for w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range iterations {
				id := fmt.Sprintf("w%d-%d", w, i)
				errs <- s.AppendActivity(ctx, store.Activity{Org: "acme", Time: t0, Actor: id, Kind: store.KindSignIn})
				errs <- s.AppendDecisions(ctx, decisions(10))
				errs <- s.CreateToken(ctx, newToken(id, "alice", "acme", store.TokenPersonal), tokenAct("acme", id))
				errs <- s.TouchTokens(ctx, map[string]time.Time{id: at(time.Minute)})
			}
		}()
		go func() {
			defer wg.Done()
			for range iterations {
				_, err := s.ListActivity(ctx, store.ActivityFilter{Org: "acme", Limit: 10})
				errs <- err
				_, err = s.GetPolicy(ctx, "acme")
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	wantActivityCount(t, s, "acme", store.KindSignIn, workers*iterations)
	wantActivityCount(t, s, "acme", store.KindTokenCreate, workers*iterations)
	ds, err := s.ListDecisions(ctx, store.DecisionFilter{Limit: 100000})
	must(t, "ListDecisions", err)
	if len(ds) != workers*iterations*10 {
		t.Errorf("%d decisions, want %d", len(ds), workers*iterations*10)
	}
}
