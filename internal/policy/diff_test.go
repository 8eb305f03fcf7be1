package policy

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func TestDiff(t *testing.T) {
	before := examplePolicy()
	tests := []struct {
		name string
		edit func(p *Policy)
		want []Change
	}{
		{name: "no change", edit: func(p *Policy) {}, want: nil},
		{
			name: "nil and empty lists are the same",
			edit: func(p *Policy) { p.ImageAccess.OrgNamespaces = append([]string(nil), p.ImageAccess.OrgNamespaces...) },
			want: nil,
		},
		{
			name: "removal in the middle is one change",
			edit: func(p *Policy) {
				rs := p.RegistryAccess.Registries
				p.RegistryAccess.Registries = append(rs[:1:1], rs[2:]...)
			},
			want: []Change{{Path: "registryAccess.registries[host=ghcr.io]", Before: Registry{Host: "ghcr.io"}}},
		},
		{
			name: "addition and change keyed by canonical host",
			edit: func(p *Policy) {
				p.RegistryAccess.Registries[1].Host = "GHCR.IO" // same entry, other spelling
				p.RegistryAccess.Registries[3].Access = AccessPullPush
				p.RegistryAccess.Registries = append(p.RegistryAccess.Registries, Registry{Host: "Quay.io"})
			},
			want: []Change{
				{Path: "registryAccess.registries[host=ghcr.io]", Before: Registry{Host: "ghcr.io"}, After: Registry{Host: "GHCR.IO"}},
				{Path: "registryAccess.registries[host=registry.corp.example:5000]",
					Before: Registry{Host: "registry.corp.example:5000", Access: AccessPull, Description: "internal mirror"},
					After:  Registry{Host: "registry.corp.example:5000", Access: AccessPullPush, Description: "internal mirror"}},
				{Path: "registryAccess.registries[host=quay.io]", After: Registry{Host: "Quay.io"}},
			},
		},
		{
			name: "reordering",
			edit: func(p *Policy) {
				rs := p.RegistryAccess.Registries
				rs[0], rs[1] = rs[1], rs[0]
			},
			want: []Change{{Path: "registryAccess.registries",
				Before: []string{"docker-hub", "ghcr.io", "*.dkr.ecr.eu-west-1.amazonaws.com", "registry.corp.example:5000"},
				After:  []string{"ghcr.io", "docker-hub", "*.dkr.ecr.eu-west-1.amazonaws.com", "registry.corp.example:5000"}}},
		},
		{
			name: "scalars and lists",
			edit: func(p *Policy) {
				p.Org = "acme2"
				p.RegistryAccess.Enabled = false
				p.ImageAccess.Enabled = false
				p.ImageAccess.CommunityImages = Allowed
				p.ImageAccess.OrgNamespaces = []string{"acme-ci"}
				p.ImageAccess.RepositoryAllowlist = []string{"bitnami/redis", "redis"}
				p.NamespaceAccess.PushOnlyToOrgNamespaces = false
			},
			want: []Change{
				{Path: "org", Before: "acme", After: "acme2"},
				{Path: "registryAccess.enabled", Before: true, After: false},
				{Path: "imageAccess.enabled", Before: true, After: false},
				{Path: "imageAccess.communityImages", Before: Restricted, After: Allowed},
				{Path: "imageAccess.orgNamespaces", Before: []string{"acme"}, After: []string{"acme-ci"}},
				{Path: "imageAccess.repositoryAllowlist", After: []string{"redis"}},
				{Path: "namespaceAccess.pushOnlyToOrgNamespaces", Before: true, After: false},
			},
		},
		{
			name: "duplicate hosts in an invalid policy are all kept",
			edit: func(p *Policy) {
				p.RegistryAccess.Registries = append(p.RegistryAccess.Registries, Registry{Host: "ghcr.io", Description: "again"})
			},
			want: []Change{{Path: "registryAccess.registries[host=ghcr.io#2]", After: Registry{Host: "ghcr.io", Description: "again"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			after := examplePolicy()
			tt.edit(&after)
			got := Diff(before, after)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
			if back := Diff(after, after); len(back) != 0 {
				t.Errorf("Diff of a policy with itself = %v", back)
			}
		})
	}
}

// TestDiffGolden pins the JSON the activity log stores for a typical Save &
// Apply, since readers of old log entries depend on its shape.
func TestDiffGolden(t *testing.T) {
	before := Default("acme")
	after := examplePolicy()
	got, err := json.MarshalIndent(Diff(before, after), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "diff.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("diff JSON differs from %s (-want +got):\n%s", golden, diff)
	}
}
