package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// Run runs every conformance test against stores made by open. open returns
// a new, empty, migrated store for each subtest; Run closes it when the
// subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"Orgs", testOrgs},
		{"Users", testUsers},
		{"Members", testMembers},
		{"MemberConstraints", testMemberConstraints},
		{"Tokens", testTokens},
		{"TokenErrors", testTokenErrors},
		{"RevokeToken", testRevokeToken},
		{"TouchTokens", testTouchTokens},
		{"PolicyRoundTrip", testPolicyRoundTrip},
		{"ApplyPolicy", testApplyPolicy},
		{"ApplyPolicyConflict", testApplyPolicyConflict},
		{"ConcurrentApply", testConcurrentApply},
		{"Catalog", testCatalog},
		{"ServerCatalog", testServerCatalog},
		{"ActivityFilters", testActivityFilters},
		{"ActivityPaging", testActivityPaging},
		{"ActivityValidation", testActivityValidation},
		{"Decisions", testDecisions},
		{"DecisionFilters", testDecisionFilters},
		{"PruneDecisions", testPruneDecisions},
		{"TimePrecision", testTimePrecision},
		{"ConcurrentWriters", testConcurrentWriters},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// t0 carries nanoseconds and a zone other than UTC on purpose: the store must
// keep at least milliseconds and hand times back in UTC.
var t0 = time.Date(2025, time.March, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))

func at(d time.Duration) time.Time { return t0.Add(d) }

// msTime compares times at the precision the contract promises.
var msTime = cmp.Comparer(func(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
})

var ignoreActivityID = cmpopts.IgnoreFields(store.Activity{}, "ID")

func wantUTC(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if tm.Location() != time.UTC {
		t.Errorf("%s: location %v, want UTC", what, tm.Location())
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want %v", what, err, target)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// initialPolicy is a small policy like the one a new org starts with.
func initialPolicy(org string) policy.Policy {
	return policy.Policy{
		Org: org,
		RegistryAccess: policy.RegistryAccess{
			Enabled:    true,
			Registries: []policy.Registry{{Host: policy.DockerHubGroup}},
		},
		ImageAccess: policy.ImageAccess{
			OfficialImages:          policy.Allowed,
			VerifiedPublisherImages: policy.Allowed,
			SponsoredOSSImages:      policy.Allowed,
			CommunityImages:         policy.Allowed,
		},
	}
}

// fullPolicy sets every field, so a lost field shows in a round trip.
func fullPolicy(org string) policy.Policy {
	return policy.Policy{
		Org: org,
		RegistryAccess: policy.RegistryAccess{
			Enabled: true,
			Registries: []policy.Registry{
				{Host: policy.DockerHubGroup},
				{Host: "ghcr.io", Access: policy.AccessPullPush},
				{Host: "*.dkr.ecr.eu-west-1.amazonaws.com"},
				{Host: "registry.corp.example:5000", Access: policy.AccessPull, Description: "internal mirror, \"quoted\" and ünïcode"},
			},
		},
		ImageAccess: policy.ImageAccess{
			Enabled:                 true,
			OfficialImages:          policy.Allowed,
			VerifiedPublisherImages: policy.Restricted,
			SponsoredOSSImages:      policy.Restricted,
			CommunityImages:         policy.Restricted,
			OrgNamespaces:           []string{org, org + "-ci"},
			RepositoryAllowlist:     []string{"bitnami/redis", "grafana/grafana"},
		},
		NamespaceAccess: policy.NamespaceAccess{PushOnlyToOrgNamespaces: true},
	}
}

func createOrg(t *testing.T, s store.Store, name string) {
	t.Helper()
	act := store.Activity{Org: name, Time: t0, Actor: "admin", Kind: store.KindOrgCreate, Target: name, Summary: "created " + name}
	must(t, "CreateOrg "+name, s.CreateOrg(context.Background(), name, initialPolicy(name), act))
}

func createUser(t *testing.T, s store.Store, name string) {
	t.Helper()
	u := store.User{Username: name, PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA", CreatedAt: t0}
	must(t, "CreateUser "+name, s.CreateUser(context.Background(), u))
}

func addMember(t *testing.T, s store.Store, org, user string, role store.Role) {
	t.Helper()
	act := store.Activity{Org: org, Time: t0, Actor: "admin", Kind: store.KindMemberAdd, Target: user}
	must(t, "AddMember "+org+"/"+user, s.AddMember(context.Background(), store.Member{Org: org, Username: user, Role: role, CreatedAt: t0}, act))
}

// activity lists all of an org's entries (up to 10,000), newest first.
func activity(t *testing.T, s store.Store, org string, kinds ...string) []store.Activity {
	t.Helper()
	as, err := s.ListActivity(context.Background(), store.ActivityFilter{Org: org, Kinds: kinds, Limit: 10000})
	must(t, "ListActivity", err)
	return as
}

// wantActivityCount checks how many entries of a kind (any kind when empty)
// an org's log holds.
func wantActivityCount(t *testing.T, s store.Store, org, kind string, n int) {
	t.Helper()
	var kinds []string
	if kind != "" {
		kinds = []string{kind}
	}
	if got := len(activity(t, s, org, kinds...)); got != n {
		t.Errorf("org %q has %d %s entries, want %d", org, got, kind, n)
	}
}

func testPing(t *testing.T, s store.Store) {
	must(t, "Ping", s.Ping(context.Background()))
}
