package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

func applyAct(org, actor string, when time.Time) store.Activity {
	return store.Activity{
		Org: org, Time: when, Actor: actor, Kind: store.KindPolicyApply, Target: "policy",
		Summary: "Save & Apply: 1 change",
		Diff:    json.RawMessage(`[{"path":"imageAccess.enabled","before":false,"after":true}]`),
	}
}

func testPolicyRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	want := fullPolicy("acme")
	must(t, "CreateOrg", s.CreateOrg(ctx, "acme", want, store.Activity{Org: "acme", Time: t0, Actor: "admin", Kind: store.KindOrgCreate}))
	rec, err := s.GetPolicy(ctx, "acme")
	must(t, "GetPolicy", err)
	if diff := cmp.Diff(want, rec.Policy); diff != "" {
		t.Errorf("policy round trip (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(t0, rec.UpdatedAt, msTime); diff != "" {
		t.Errorf("UpdatedAt of a new org's policy (-want +got):\n%s", diff)
	}
	wantUTC(t, "PolicyRecord.UpdatedAt", rec.UpdatedAt)

	// nil and empty lists are different JSON (null, []) and both come back as they went in.
	sparse := policy.Policy{Org: "acme", ImageAccess: policy.ImageAccess{OrgNamespaces: []string{}}}
	_, err = s.ApplyPolicy(ctx, "acme", sparse, 1, applyAct("acme", "alice", at(time.Hour)))
	must(t, "ApplyPolicy", err)
	rec, err = s.GetPolicy(ctx, "acme")
	must(t, "GetPolicy", err)
	if diff := cmp.Diff(sparse, rec.Policy); diff != "" {
		t.Errorf("sparse policy round trip (-want +got):\n%s", diff)
	}
	_, err = s.GetPolicy(ctx, "nope")
	wantErr(t, "GetPolicy of a missing org", err, store.ErrNotFound)
}

func testApplyPolicy(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOrg(t, s, "acme")
	createOrg(t, s, "beta")
	p := fullPolicy("acme")
	act := applyAct("acme", "alice", at(time.Hour))
	rec, err := s.ApplyPolicy(ctx, "acme", p, 1, act)
	must(t, "ApplyPolicy", err)
	want := store.PolicyRecord{Org: "acme", Version: 2, Policy: p, UpdatedAt: at(time.Hour), UpdatedBy: "alice"}
	if diff := cmp.Diff(want, rec, msTime); diff != "" {
		t.Errorf("ApplyPolicy result (-want +got):\n%s", diff)
	}
	got, err := s.GetPolicy(ctx, "acme")
	must(t, "GetPolicy", err)
	if diff := cmp.Diff(want, got, msTime); diff != "" {
		t.Errorf("GetPolicy after ApplyPolicy (-want +got):\n%s", diff)
	}
	// The entry records the version the apply produced, even if the caller left it out.
	wantAct := act
	wantAct.Version = 2
	if diff := cmp.Diff([]store.Activity{wantAct}, activity(t, s, "acme", store.KindPolicyApply), msTime, ignoreActivityID); diff != "" {
		t.Errorf("activity after ApplyPolicy (-want +got):\n%s", diff)
	}

	rec, err = s.ApplyPolicy(ctx, "acme", initialPolicy("acme"), 2, applyAct("acme", "bob", at(2*time.Hour)))
	must(t, "second ApplyPolicy", err)
	if rec.Version != 3 || rec.UpdatedBy != "bob" {
		t.Errorf("second ApplyPolicy = version %d by %q, want 3 by bob", rec.Version, rec.UpdatedBy)
	}
	vs, err := s.PolicyVersions(ctx)
	must(t, "PolicyVersions", err)
	if diff := cmp.Diff(map[string]int64{"acme": 3, "beta": 1}, vs); diff != "" {
		t.Errorf("PolicyVersions (-want +got):\n%s", diff)
	}

	_, err = s.ApplyPolicy(ctx, "nope", p, 1, applyAct("nope", "alice", t0))
	wantErr(t, "ApplyPolicy to a missing org", err, store.ErrNotFound)
	if n := len(activity(t, s, "nope")); n != 0 {
		t.Errorf("a failed ApplyPolicy to a missing org wrote %d activity entries", n)
	}
}

func testApplyPolicyConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOrg(t, s, "acme")
	first := fullPolicy("acme")
	_, err := s.ApplyPolicy(ctx, "acme", first, 1, applyAct("acme", "alice", at(time.Hour)))
	must(t, "ApplyPolicy", err)

	for _, stale := range []int64{1, 0, 3} {
		_, err = s.ApplyPolicy(ctx, "acme", initialPolicy("acme"), stale, applyAct("acme", "bob", at(2*time.Hour)))
		wantErr(t, fmt.Sprintf("ApplyPolicy expecting version %d of 2", stale), err, store.ErrConflict)
	}
	rec, err := s.GetPolicy(ctx, "acme")
	must(t, "GetPolicy", err)
	if rec.Version != 2 || rec.UpdatedBy != "alice" {
		t.Errorf("after conflicts: version %d by %q, want 2 by alice", rec.Version, rec.UpdatedBy)
	}
	if diff := cmp.Diff(first, rec.Policy); diff != "" {
		t.Errorf("a conflicting apply changed the policy (-want +got):\n%s", diff)
	}
	wantActivityCount(t, s, "acme", store.KindPolicyApply, 1)

	// An entry that cannot be written takes the change down with it.
	bad := applyAct("acme", "bob", at(3*time.Hour))
	bad.Diff = json.RawMessage(`{"path": `)
	_, err = s.ApplyPolicy(ctx, "acme", initialPolicy("acme"), 2, bad)
	if err == nil {
		t.Fatal("ApplyPolicy with an activity diff that is not JSON succeeded")
	}
	if rec, _ := s.GetPolicy(ctx, "acme"); rec.Version != 2 {
		t.Errorf("a failed apply moved the version to %d", rec.Version)
	}
	wantActivityCount(t, s, "acme", store.KindPolicyApply, 1)
}

// testConcurrentApply races many Save & Apply calls that all read the same
// version: exactly one may win each round.
func testConcurrentApply(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOrg(t, s, "acme")
	const workers = 16
	const rounds = 3
	for round := range rounds {
		expect := int64(round + 1)
		start := make(chan struct{})
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := fullPolicy("acme")
				p.ImageAccess.RepositoryAllowlist = []string{fmt.Sprintf("writer/w%d", i)}
				<-start
				_, errs[i] = s.ApplyPolicy(ctx, "acme", p, expect, applyAct("acme", fmt.Sprintf("w%d", i), at(time.Duration(round)*time.Hour)))
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("round %d: writers %d and %d both won", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("round %d: writer %d: %v, want ErrConflict", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won", round)
		}
		rec, err := s.GetPolicy(ctx, "acme")
		must(t, "GetPolicy", err)
		if rec.Version != expect+1 || rec.UpdatedBy != fmt.Sprintf("w%d", winner) {
			t.Errorf("round %d: version %d by %q, want %d by w%d", round, rec.Version, rec.UpdatedBy, expect+1, winner)
		}
		if got, want := rec.Policy.ImageAccess.RepositoryAllowlist, []string{fmt.Sprintf("writer/w%d", winner)}; !cmp.Equal(got, want) {
			t.Errorf("round %d: stored policy is %v, the winner wrote %v", round, got, want)
		}
		acts := activity(t, s, "acme", store.KindPolicyApply)
		if len(acts) != round+1 {
			t.Fatalf("round %d: %d policy.apply entries, want %d", round, len(acts), round+1)
		}
		if acts[0].Actor != fmt.Sprintf("w%d", winner) || acts[0].Version != expect+1 {
			t.Errorf("round %d: newest entry by %q at version %d, want w%d at %d", round, acts[0].Actor, acts[0].Version, winner, expect+1)
		}
	}
}

var equateEmpty = cmpopts.EquateEmpty()

func catAct(org string, when time.Time) store.Activity {
	return store.Activity{Org: org, Time: when, Actor: "admin", Kind: store.KindCatalogUpdate, Target: "catalog", Summary: "catalog changed"}
}

func testCatalog(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOrg(t, s, "acme")
	createOrg(t, s, "beta")
	for _, scope := range []string{store.ServerScope, "acme"} {
		c, err := s.GetCatalog(ctx, scope)
		must(t, "GetCatalog", err)
		if len(c.VerifiedPublishers) != 0 || len(c.SponsoredOSS) != 0 {
			t.Errorf("unset catalog of scope %q = %+v, want empty lists", scope, c)
		}
	}
	_, err := s.GetCatalog(ctx, "nope")
	wantErr(t, "GetCatalog of a missing org", err, store.ErrNotFound)

	c := policy.Catalog{VerifiedPublishers: []string{"acmecorp", "bitnami"}, SponsoredOSS: []string{"grafana"}}
	vs, err := s.SetCatalog(ctx, "acme", c, catAct("acme", at(time.Hour)))
	must(t, "SetCatalog", err)
	if diff := cmp.Diff(map[string]int64{"acme": 2}, vs); diff != "" {
		t.Errorf("SetCatalog of one org returned versions (-want +got):\n%s", diff)
	}
	all, err := s.PolicyVersions(ctx)
	must(t, "PolicyVersions", err)
	if diff := cmp.Diff(map[string]int64{"acme": 2, "beta": 1}, all); diff != "" {
		t.Errorf("PolicyVersions after an org's catalog change (-want +got):\n%s", diff)
	}
	got, err := s.GetCatalog(ctx, "acme")
	must(t, "GetCatalog", err)
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("catalog round trip (-want +got):\n%s", diff)
	}
	if srv, _ := s.GetCatalog(ctx, store.ServerScope); len(srv.VerifiedPublishers) != 0 {
		t.Errorf("an org's catalog leaked into the server scope: %+v", srv)
	}
	acts := activity(t, s, "acme", store.KindCatalogUpdate)
	if len(acts) != 1 || acts[0].Version != 2 {
		t.Errorf("catalog.update entries = %+v, want one at version 2", acts)
	}

	// Replacing with nil lists empties them.
	vs, err = s.SetCatalog(ctx, "acme", policy.Catalog{}, catAct("acme", at(2*time.Hour)))
	must(t, "SetCatalog to empty", err)
	if vs["acme"] != 3 {
		t.Errorf("second SetCatalog returned %v, want acme at 3", vs)
	}
	got, _ = s.GetCatalog(ctx, "acme")
	if diff := cmp.Diff(policy.Catalog{}, got, equateEmpty); diff != "" {
		t.Errorf("emptied catalog (-want +got):\n%s", diff)
	}

	_, err = s.SetCatalog(ctx, "nope", c, catAct("nope", t0))
	wantErr(t, "SetCatalog of a missing org", err, store.ErrNotFound)
	all, _ = s.PolicyVersions(ctx)
	if diff := cmp.Diff(map[string]int64{"acme": 3, "beta": 1}, all); diff != "" {
		t.Errorf("versions after a failed SetCatalog (-want +got):\n%s", diff)
	}
	if n := len(activity(t, s, "nope")); n != 0 {
		t.Errorf("a failed SetCatalog wrote %d activity entries", n)
	}
}

func testServerCatalog(t *testing.T, s store.Store) {
	ctx := context.Background()
	vs, err := s.SetCatalog(ctx, store.ServerScope, policy.Catalog{VerifiedPublishers: []string{"x"}}, catAct("", t0))
	must(t, "SetCatalog without orgs", err)
	if len(vs) != 0 {
		t.Errorf("SetCatalog of the server scope without orgs returned %v", vs)
	}
	for _, o := range []string{"acme", "beta", "gamma"} {
		createOrg(t, s, o)
	}
	_, err = s.ApplyPolicy(ctx, "beta", fullPolicy("beta"), 1, applyAct("beta", "alice", t0))
	must(t, "ApplyPolicy", err)

	c := policy.Catalog{VerifiedPublishers: []string{"bitnami", "docker"}, SponsoredOSS: []string{"grafana", "prom"}}
	vs, err = s.SetCatalog(ctx, store.ServerScope, c, catAct("", at(time.Hour)))
	must(t, "SetCatalog server scope", err)
	want := map[string]int64{"acme": 2, "beta": 3, "gamma": 2}
	if diff := cmp.Diff(want, vs); diff != "" {
		t.Errorf("SetCatalog(ServerScope) returned versions (-want +got):\n%s", diff)
	}
	all, err := s.PolicyVersions(ctx)
	must(t, "PolicyVersions", err)
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("PolicyVersions after a server catalog change (-want +got):\n%s", diff)
	}
	got, err := s.GetCatalog(ctx, store.ServerScope)
	must(t, "GetCatalog", err)
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("server catalog round trip (-want +got):\n%s", diff)
	}
	if own, _ := s.GetCatalog(ctx, "acme"); len(own.VerifiedPublishers)+len(own.SponsoredOSS) != 0 {
		t.Errorf("the server catalog leaked into org acme's own lists: %+v", own)
	}
	// An apply that read the version before the catalog change now conflicts.
	_, err = s.ApplyPolicy(ctx, "acme", fullPolicy("acme"), 1, applyAct("acme", "alice", at(2*time.Hour)))
	wantErr(t, "ApplyPolicy with the version from before a catalog change", err, store.ErrConflict)

	acts, err := s.ListActivity(ctx, store.ActivityFilter{Kinds: []string{store.KindCatalogUpdate}, Limit: 100})
	must(t, "ListActivity", err)
	if len(acts) != 2 {
		t.Errorf("%d catalog.update entries, want 2 (one per SetCatalog)", len(acts))
	}
}
