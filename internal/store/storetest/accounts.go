package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regward/regward/internal/store"
)

func testOrgs(t *testing.T, s store.Store) {
	ctx := context.Background()
	if orgs, err := s.ListOrgs(ctx); err != nil || len(orgs) != 0 {
		t.Fatalf("ListOrgs on an empty store = %v, %v; want none", orgs, err)
	}
	_, err := s.GetOrg(ctx, "acme")
	wantErr(t, "GetOrg of a missing org", err, store.ErrNotFound)

	createOrg(t, s, "zeta")
	createOrg(t, s, "acme")
	got, err := s.GetOrg(ctx, "acme")
	must(t, "GetOrg", err)
	// The org is created at the time of its activity, so the two agree.
	if diff := cmp.Diff(store.Org{Name: "acme", CreatedAt: t0}, got, msTime); diff != "" {
		t.Errorf("GetOrg (-want +got):\n%s", diff)
	}
	wantUTC(t, "Org.CreatedAt", got.CreatedAt)

	orgs, err := s.ListOrgs(ctx)
	must(t, "ListOrgs", err)
	var names []string
	for _, o := range orgs {
		names = append(names, o.Name)
	}
	if diff := cmp.Diff([]string{"acme", "zeta"}, names); diff != "" {
		t.Errorf("ListOrgs names, sorted (-want +got):\n%s", diff)
	}

	// A new org has its initial policy at version 1.
	rec, err := s.GetPolicy(ctx, "acme")
	must(t, "GetPolicy of a new org", err)
	if rec.Version != 1 || rec.Org != "acme" || rec.UpdatedBy != "admin" {
		t.Errorf("new org's policy record = version %d org %q by %q; want 1, acme, admin", rec.Version, rec.Org, rec.UpdatedBy)
	}
	if diff := cmp.Diff(initialPolicy("acme"), rec.Policy); diff != "" {
		t.Errorf("initial policy (-want +got):\n%s", diff)
	}

	acts := activity(t, s, "acme")
	if len(acts) != 1 || acts[0].Kind != store.KindOrgCreate || acts[0].Actor != "admin" || acts[0].ID == 0 {
		t.Fatalf("activity after CreateOrg = %+v; want one org.create by admin with an ID", acts)
	}

	// A duplicate fails and, being a failed change, writes no activity.
	err = s.CreateOrg(ctx, "acme", initialPolicy("acme"), store.Activity{Org: "acme", Time: t0, Actor: "eve", Kind: store.KindOrgCreate})
	wantErr(t, "CreateOrg of an existing org", err, store.ErrExists)
	wantActivityCount(t, s, "acme", store.KindOrgCreate, 1)
	if rec2, err := s.GetPolicy(ctx, "acme"); err != nil || rec2.Version != 1 {
		t.Errorf("policy after a failed duplicate CreateOrg = version %d, %v; want 1", rec2.Version, err)
	}

	if err := s.CreateOrg(ctx, "", initialPolicy(""), store.Activity{}); err == nil {
		t.Error("CreateOrg with an empty name succeeded")
	}
}

func testUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.GetUser(ctx, "alice")
	wantErr(t, "GetUser of a missing user", err, store.ErrNotFound)

	alice := store.User{Username: "alice", PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$YWJj$ZGVm", ServerAdmin: true, CreatedAt: at(time.Hour)}
	must(t, "CreateUser", s.CreateUser(ctx, alice))
	createUser(t, s, "bob")
	got, err := s.GetUser(ctx, "alice")
	must(t, "GetUser", err)
	if diff := cmp.Diff(alice, got, msTime); diff != "" {
		t.Errorf("GetUser (-want +got):\n%s", diff)
	}
	wantUTC(t, "User.CreatedAt", got.CreatedAt)
	if got, _ := s.GetUser(ctx, "bob"); got.ServerAdmin {
		t.Error("bob became a server admin")
	}

	err = s.CreateUser(ctx, store.User{Username: "alice", PasswordHash: "other", CreatedAt: t0})
	wantErr(t, "CreateUser of an existing user", err, store.ErrExists)
	if got, _ := s.GetUser(ctx, "alice"); got.PasswordHash != alice.PasswordHash {
		t.Error("a failed duplicate CreateUser replaced the password hash")
	}
	if err := s.CreateUser(ctx, store.User{Username: ""}); err == nil {
		t.Error("CreateUser with an empty username succeeded")
	}

	createOrg(t, s, "acme")
	act := store.Activity{Org: "acme", Time: at(2 * time.Hour), Actor: "alice", Kind: store.KindUserPassword, Target: "alice", Summary: "password changed"}
	must(t, "SetPassword", s.SetPassword(ctx, "alice", "new-hash", act))
	if got, _ := s.GetUser(ctx, "alice"); got.PasswordHash != "new-hash" {
		t.Errorf("hash after SetPassword = %q, want new-hash", got.PasswordHash)
	}
	acts := activity(t, s, "acme", store.KindUserPassword)
	if diff := cmp.Diff([]store.Activity{act}, acts, msTime, ignoreActivityID); diff != "" {
		t.Errorf("activity after SetPassword (-want +got):\n%s", diff)
	}

	err = s.SetPassword(ctx, "nobody", "x", store.Activity{Org: "acme", Time: t0, Actor: "alice", Kind: store.KindUserPassword, Target: "nobody"})
	wantErr(t, "SetPassword of a missing user", err, store.ErrNotFound)
	wantActivityCount(t, s, "acme", store.KindUserPassword, 1)
}

func testMembers(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOrg(t, s, "acme")
	createOrg(t, s, "beta")
	for _, u := range []string{"carol", "alice", "bob"} {
		createUser(t, s, u)
	}
	if ms, err := s.ListMembers(ctx, "acme"); err != nil || len(ms) != 0 {
		t.Fatalf("ListMembers of an org without members = %v, %v; want none", ms, err)
	}
	alice := store.Member{Org: "acme", Username: "alice", Role: store.RoleOwner, CreatedAt: at(time.Minute)}
	must(t, "AddMember", s.AddMember(ctx, alice, store.Activity{Org: "acme", Time: t0, Actor: "admin", Kind: store.KindMemberAdd, Target: "alice"}))
	addMember(t, s, "acme", "carol", store.RoleMember)
	addMember(t, s, "acme", "bob", store.RoleMember)
	addMember(t, s, "beta", "alice", store.RoleMember)

	got, err := s.GetMember(ctx, "acme", "alice")
	must(t, "GetMember", err)
	if diff := cmp.Diff(alice, got, msTime); diff != "" {
		t.Errorf("GetMember (-want +got):\n%s", diff)
	}
	wantUTC(t, "Member.CreatedAt", got.CreatedAt)

	ms, err := s.ListMembers(ctx, "acme")
	must(t, "ListMembers", err)
	if diff := cmp.Diff([]string{"alice/owner", "bob/member", "carol/member"}, memberRoles(ms, false)); diff != "" {
		t.Errorf("ListMembers, sorted by username (-want +got):\n%s", diff)
	}
	ms, err = s.ListUserOrgs(ctx, "alice")
	must(t, "ListUserOrgs", err)
	if diff := cmp.Diff([]string{"acme/owner", "beta/member"}, memberRoles(ms, true)); diff != "" {
		t.Errorf("ListUserOrgs, sorted by org (-want +got):\n%s", diff)
	}

	err = s.AddMember(ctx, store.Member{Org: "acme", Username: "bob", Role: store.RoleOwner, CreatedAt: t0},
		store.Activity{Org: "acme", Time: t0, Actor: "admin", Kind: store.KindMemberAdd, Target: "bob"})
	wantErr(t, "AddMember of an existing member", err, store.ErrExists)
	wantActivityCount(t, s, "acme", store.KindMemberAdd, 3)
	if m, _ := s.GetMember(ctx, "acme", "bob"); m.Role != store.RoleMember {
		t.Errorf("a failed duplicate AddMember changed bob's role to %q", m.Role)
	}

	upd := store.Activity{Org: "acme", Time: at(time.Hour), Actor: "alice", Kind: store.KindMemberUpdate, Target: "bob", Summary: "member -> owner"}
	must(t, "SetRole", s.SetRole(ctx, "acme", "bob", store.RoleOwner, upd))
	if m, _ := s.GetMember(ctx, "acme", "bob"); m.Role != store.RoleOwner {
		t.Errorf("role after SetRole = %q, want owner", m.Role)
	}
	if diff := cmp.Diff([]store.Activity{upd}, activity(t, s, "acme", store.KindMemberUpdate), msTime, ignoreActivityID); diff != "" {
		t.Errorf("activity after SetRole (-want +got):\n%s", diff)
	}

	rm := store.Activity{Org: "acme", Time: at(2 * time.Hour), Actor: "alice", Kind: store.KindMemberRemove, Target: "carol"}
	must(t, "RemoveMember", s.RemoveMember(ctx, "acme", "carol", rm))
	_, err = s.GetMember(ctx, "acme", "carol")
	wantErr(t, "GetMember after RemoveMember", err, store.ErrNotFound)
	wantActivityCount(t, s, "acme", store.KindMemberRemove, 1)
	if _, err := s.GetUser(ctx, "carol"); err != nil {
		t.Errorf("RemoveMember removed the user too: %v", err)
	}

	// Missing members: ErrNotFound and no activity.
	err = s.SetRole(ctx, "acme", "carol", store.RoleOwner, store.Activity{Org: "acme", Time: t0, Actor: "alice", Kind: store.KindMemberUpdate})
	wantErr(t, "SetRole of a missing member", err, store.ErrNotFound)
	err = s.RemoveMember(ctx, "acme", "carol", store.Activity{Org: "acme", Time: t0, Actor: "alice", Kind: store.KindMemberRemove})
	wantErr(t, "RemoveMember of a missing member", err, store.ErrNotFound)
	_, err = s.GetMember(ctx, "nope", "alice")
	wantErr(t, "GetMember in a missing org", err, store.ErrNotFound)
	wantActivityCount(t, s, "acme", store.KindMemberUpdate, 1)
	wantActivityCount(t, s, "acme", store.KindMemberRemove, 1)
}

func memberRoles(ms []store.Member, byOrg bool) []string {
	var out []string
	for _, m := range ms {
		key := m.Username
		if byOrg {
			key = m.Org
		}
		out = append(out, key+"/"+string(m.Role))
	}
	return out
}

func testMemberConstraints(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOrg(t, s, "acme")
	createUser(t, s, "alice")
	act := func(target string) store.Activity {
		return store.Activity{Org: "acme", Time: t0, Actor: "admin", Kind: store.KindMemberAdd, Target: target}
	}
	err := s.AddMember(ctx, store.Member{Org: "nope", Username: "alice", Role: store.RoleMember, CreatedAt: t0}, act("alice"))
	wantErr(t, "AddMember to a missing org", err, store.ErrNotFound)
	if err != nil && !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("AddMember to a missing org: error %q does not name the org", err)
	}
	err = s.AddMember(ctx, store.Member{Org: "acme", Username: "ghost", Role: store.RoleMember, CreatedAt: t0}, act("ghost"))
	wantErr(t, "AddMember of a missing user", err, store.ErrNotFound)
	if err != nil && !strings.Contains(err.Error(), `"ghost"`) {
		t.Errorf("AddMember of a missing user: error %q does not name the user", err)
	}
	err = s.AddMember(ctx, store.Member{Org: "acme", Username: "alice", Role: "admin", CreatedAt: t0}, act("alice"))
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) {
		t.Errorf("AddMember with role %q: error %v, want a validation error", "admin", err)
	}
	err = s.SetRole(ctx, "acme", "alice", "superuser", store.Activity{Org: "acme", Time: t0, Actor: "admin", Kind: store.KindMemberUpdate})
	if err == nil {
		t.Error("SetRole to an unknown role succeeded")
	}
	wantActivityCount(t, s, "acme", store.KindMemberAdd, 0)
	if ms, err := s.ListMembers(ctx, "acme"); err != nil || len(ms) != 0 {
		t.Errorf("members after failed adds = %v, %v; want none", ms, err)
	}
	_, err = s.ListMembers(ctx, "nope")
	wantErr(t, "ListMembers of a missing org", err, store.ErrNotFound)
	_, err = s.ListUserOrgs(ctx, "ghost")
	wantErr(t, "ListUserOrgs of a missing user", err, store.ErrNotFound)
	if ms, err := s.ListUserOrgs(ctx, "alice"); err != nil || len(ms) != 0 {
		t.Errorf("ListUserOrgs of a user in no org = %v, %v; want none", ms, err)
	}
}

func newToken(id, user, org string, kind store.TokenKind) store.Token {
	return store.Token{ID: id, Kind: kind, Username: user, Org: org, Name: "token " + id, Hash: []byte("sha256-of-" + id + "\x00\xff"), CreatedAt: t0}
}

func tokenAct(org, id string) store.Activity {
	return store.Activity{Org: org, Time: t0, Actor: "alice", Kind: store.KindTokenCreate, Target: id}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOrg(t, s, "acme")
	createOrg(t, s, "beta")
	createUser(t, s, "alice")
	createUser(t, s, "bob")

	exp := at(24 * time.Hour)
	full := newToken("tok1", "alice", "acme", store.TokenPersonal)
	full.ExpiresAt = &exp
	must(t, "CreateToken", s.CreateToken(ctx, full, tokenAct("acme", "tok1")))
	got, err := s.GetToken(ctx, "tok1")
	must(t, "GetToken", err)
	if diff := cmp.Diff(full, got, msTime); diff != "" {
		t.Errorf("GetToken (-want +got):\n%s", diff)
	}
	wantUTC(t, "Token.CreatedAt", got.CreatedAt)
	if got.ExpiresAt != nil {
		wantUTC(t, "Token.ExpiresAt", *got.ExpiresAt)
	}
	wantActivityCount(t, s, "acme", store.KindTokenCreate, 1)

	must(t, "CreateToken", s.CreateToken(ctx, newToken("tok2", "bob", "acme", store.TokenPersonal), tokenAct("acme", "tok2")))
	must(t, "CreateToken", s.CreateToken(ctx, newToken("tok3", "alice", "acme", store.TokenSession), tokenAct("acme", "tok3")))
	must(t, "CreateToken", s.CreateToken(ctx, newToken("tok4", "alice", "beta", store.TokenPersonal), tokenAct("beta", "tok4")))
	// A gateway token belongs to no org; a zero Activity records nothing.
	must(t, "CreateToken gateway", s.CreateToken(ctx, newToken("gw1", "alice", "", store.TokenGateway), store.Activity{}))
	gw, err := s.GetToken(ctx, "gw1")
	must(t, "GetToken gateway", err)
	if gw.Org != "" || gw.Kind != store.TokenGateway || gw.ExpiresAt != nil || gw.LastUsedAt != nil || gw.RevokedAt != nil {
		t.Errorf("gateway token = %+v; want no org, kind gateway, nil times", gw)
	}
	all, err := s.ListActivity(ctx, store.ActivityFilter{Limit: 1000})
	must(t, "ListActivity", err)
	if n := len(all); n != 2+4 {
		t.Errorf("activity holds %d entries, want 6 (2 org.create, 4 token.create)", n)
	}

	cases := []struct {
		org, user string
		kind      store.TokenKind
		want      []string
	}{
		{"acme", "", store.TokenPersonal, []string{"tok1", "tok2"}},
		{"acme", "alice", store.TokenPersonal, []string{"tok1"}},
		{"acme", "alice", store.TokenSession, []string{"tok3"}},
		{"beta", "", store.TokenPersonal, []string{"tok4"}},
		{"beta", "bob", store.TokenPersonal, nil},
		{"", "", store.TokenGateway, []string{"gw1"}},
	}
	for _, c := range cases {
		ts, err := s.ListTokens(ctx, c.org, c.user, c.kind)
		must(t, "ListTokens", err)
		var ids []string
		for _, tk := range ts {
			ids = append(ids, tk.ID)
		}
		if diff := cmp.Diff(c.want, ids); diff != "" {
			t.Errorf("ListTokens(%q, %q, %q) IDs (-want +got):\n%s", c.org, c.user, c.kind, diff)
		}
	}
}

func testTokenErrors(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOrg(t, s, "acme")
	createUser(t, s, "alice")
	must(t, "CreateToken", s.CreateToken(ctx, newToken("tok1", "alice", "acme", store.TokenPersonal), tokenAct("acme", "tok1")))

	other := newToken("tok1", "alice", "acme", store.TokenSession)
	other.Hash = []byte("different")
	wantErr(t, "CreateToken with an existing ID", s.CreateToken(ctx, other, tokenAct("acme", "tok1")), store.ErrExists)
	if got, _ := s.GetToken(ctx, "tok1"); string(got.Hash) == "different" {
		t.Error("a failed duplicate CreateToken replaced the token")
	}
	wantErr(t, "CreateToken of a missing user", s.CreateToken(ctx, newToken("tok2", "ghost", "acme", store.TokenPersonal), tokenAct("acme", "tok2")), store.ErrNotFound)
	wantErr(t, "CreateToken in a missing org", s.CreateToken(ctx, newToken("tok3", "alice", "nope", store.TokenPersonal), tokenAct("acme", "tok3")), store.ErrNotFound)
	if err := s.CreateToken(ctx, newToken("", "alice", "acme", store.TokenPersonal), tokenAct("acme", "")); err == nil {
		t.Error("CreateToken with an empty ID succeeded")
	}
	if err := s.CreateToken(ctx, newToken("tok4", "alice", "acme", "api-key"), tokenAct("acme", "tok4")); err == nil {
		t.Error("CreateToken of an unknown kind succeeded")
	}
	wantActivityCount(t, s, "acme", store.KindTokenCreate, 1)
	_, err := s.GetToken(ctx, "tok2")
	wantErr(t, "GetToken of a missing token", err, store.ErrNotFound)
}

func testRevokeToken(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOrg(t, s, "acme")
	createUser(t, s, "alice")
	must(t, "CreateToken", s.CreateToken(ctx, newToken("tok1", "alice", "acme", store.TokenPersonal), tokenAct("acme", "tok1")))

	when := at(3 * time.Hour)
	act := store.Activity{Org: "acme", Time: when, Actor: "alice", Kind: store.KindTokenRevoke, Target: "tok1", Summary: "revoked"}
	must(t, "RevokeToken", s.RevokeToken(ctx, "tok1", when, act))
	got, err := s.GetToken(ctx, "tok1")
	must(t, "GetToken", err)
	if got.RevokedAt == nil {
		t.Fatal("RevokedAt is nil after RevokeToken")
	}
	if diff := cmp.Diff(when, *got.RevokedAt, msTime); diff != "" {
		t.Errorf("RevokedAt (-want +got):\n%s", diff)
	}
	wantUTC(t, "Token.RevokedAt", *got.RevokedAt)
	if diff := cmp.Diff([]store.Activity{act}, activity(t, s, "acme", store.KindTokenRevoke), msTime, ignoreActivityID); diff != "" {
		t.Errorf("activity after RevokeToken (-want +got):\n%s", diff)
	}

	// Revoking again changes nothing: the first revocation time stays and
	// no second entry is written.
	must(t, "RevokeToken again", s.RevokeToken(ctx, "tok1", at(5*time.Hour), act))
	got, _ = s.GetToken(ctx, "tok1")
	if got.RevokedAt == nil || !got.RevokedAt.Truncate(time.Millisecond).Equal(when.Truncate(time.Millisecond)) {
		t.Errorf("RevokedAt after a second RevokeToken = %v, want %v", got.RevokedAt, when)
	}
	wantActivityCount(t, s, "acme", store.KindTokenRevoke, 1)

	wantErr(t, "RevokeToken of a missing token", s.RevokeToken(ctx, "nope", when, act), store.ErrNotFound)
	wantActivityCount(t, s, "acme", store.KindTokenRevoke, 1)
}

func testTouchTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	createOrg(t, s, "acme")
	createUser(t, s, "alice")
	for _, id := range []string{"tok1", "tok2", "tok3"} {
		must(t, "CreateToken", s.CreateToken(ctx, newToken(id, "alice", "acme", store.TokenPersonal), tokenAct("acme", id)))
	}
	must(t, "TouchTokens of nothing", s.TouchTokens(ctx, nil))
	t1, t2 := at(time.Hour), at(2*time.Hour)
	// Unknown IDs (a token deleted meanwhile) are skipped, not an error.
	must(t, "TouchTokens", s.TouchTokens(ctx, map[string]time.Time{"tok1": t1, "tok2": t2, "gone": t2}))
	for id, want := range map[string]*time.Time{"tok1": &t1, "tok2": &t2, "tok3": nil} {
		got, err := s.GetToken(ctx, id)
		must(t, "GetToken", err)
		if diff := cmp.Diff(want, got.LastUsedAt, msTime); diff != "" {
			t.Errorf("%s LastUsedAt (-want +got):\n%s", id, diff)
		}
	}
	// Batches arrive out of order from several replicas: last use never goes back.
	must(t, "TouchTokens older", s.TouchTokens(ctx, map[string]time.Time{"tok2": t1}))
	got, _ := s.GetToken(ctx, "tok2")
	if diff := cmp.Diff(&t2, got.LastUsedAt, msTime); diff != "" {
		t.Errorf("LastUsedAt after an older touch (-want +got):\n%s", diff)
	}
	wantActivityCount(t, s, "acme", "", 1+3)
}
