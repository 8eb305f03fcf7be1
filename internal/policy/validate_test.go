package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateValid(t *testing.T) {
	for name, p := range map[string]Policy{
		"default": Default("acme"),
		"example": examplePolicy(),
		"edge names": {
			Org: "a" + strings.Repeat("b", 62),
			RegistryAccess: RegistryAccess{Enabled: true, Registries: []Registry{
				{Host: "ghcr.io", Access: AccessPullPush},
				{Host: "ghcr.io:5000"},          // same host, another port: not a duplicate
				{Host: "*.ghcr.io"},             // the wildcard does not cover ghcr.io itself
				{Host: "docker.io", Access: ""}, // overlaps docker-hub without being it
				{Host: "docker-hub"},
				{Host: "[::1]:5000"},
				{Host: "10.0.0.1"},
			}},
			ImageAccess: ImageAccess{
				OfficialImages: Restricted, VerifiedPublisherImages: Restricted, SponsoredOSSImages: Restricted, CommunityImages: Restricted,
				OrgNamespaces:       []string{"acme", "acme-ci", "a_b", "a__b", "a--b"},
				RepositoryAllowlist: []string{"redis", "bitnami/redis", "acme/app.web", "x/y_z"},
			},
		},
	} {
		if err := p.Validate(Limits{}); err != nil {
			t.Errorf("%s: Validate: %v", name, err)
		}
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name   string
		limits Limits
		edit   func(p *Policy)
		want   []FieldError
	}{
		{
			name: "org",
			edit: func(p *Policy) { p.Org = "Acme" },
			want: []FieldError{{"org", `"Acme" is not a valid organization name: use 1 to 63 lowercase letters, digits, "_" or "-", starting with a letter or digit`}},
		},
		{
			name: "org missing",
			edit: func(p *Policy) { p.Org = "" },
			want: []FieldError{{"org", "required"}},
		},
		{
			name: "org too long",
			edit: func(p *Policy) { p.Org = strings.Repeat("a", 64) },
			want: []FieldError{{"org", fmt.Sprintf(`%q is not a valid organization name: use 1 to 63 lowercase letters, digits, "_" or "-", starting with a letter or digit`, strings.Repeat("a", 64))}},
		},
		{
			name: "hosts, duplicates, access",
			edit: func(p *Policy) {
				p.RegistryAccess.Registries = []Registry{
					{Host: "docker-hub"},
					{Host: "ghcr.io"},
					{Host: "GHCR.IO."},
					{Host: "docker.io/library"},
					{Host: "quay.io", Access: "push"},
					{Host: ""},
					{Host: "DOCKER-HUB"},
					{Host: "*.example.com:5000"},
					{Host: "*.EXAMPLE.com:5000"},
				}
			},
			want: []FieldError{
				{"registryAccess.registries[2].host", `"GHCR.IO." duplicates registryAccess.registries[1]`},
				{"registryAccess.registries[3].host", `"docker.io/library" is not a hostname: it contains "/"; name a registry host, not a repository or URL`},
				{"registryAccess.registries[4].access", `"push" is not an access value; use pull or pull-push`},
				{"registryAccess.registries[5].host", "required"},
				{"registryAccess.registries[6].host", `"DOCKER-HUB" duplicates registryAccess.registries[0]`},
				{"registryAccess.registries[8].host", `"*.EXAMPLE.com:5000" duplicates registryAccess.registries[7]`},
			},
		},
		{
			name: "description",
			edit: func(p *Policy) {
				p.RegistryAccess.Registries = []Registry{{Host: "a.example", Description: strings.Repeat("x", 1025)}, {Host: "b.example", Description: "\xff"}}
			},
			want: []FieldError{
				{"registryAccess.registries[0].description", "longer than 1024 characters"},
				{"registryAccess.registries[1].description", "not valid UTF-8"},
			},
		},
		{
			name: "entry limit, default",
			edit: func(p *Policy) { p.RegistryAccess.Registries = numberedRegistries(101) },
			want: []FieldError{{"registryAccess.registries", "101 entries, the limit is 100"}},
		},
		{
			name:   "entry limit, configured",
			limits: Limits{MaxRegistries: 3},
			edit:   func(p *Policy) { p.RegistryAccess.Registries = numberedRegistries(4) },
			want:   []FieldError{{"registryAccess.registries", "4 entries, the limit is 3"}},
		},
		{
			name: "restrictions",
			edit: func(p *Policy) {
				p.ImageAccess.OfficialImages = ""
				p.ImageAccess.CommunityImages = "blocked"
			},
			want: []FieldError{
				{"imageAccess.officialImages", "required"},
				{"imageAccess.communityImages", `"blocked" is not a restriction; use allowed or restricted`},
			},
		},
		{
			name: "namespaces",
			edit: func(p *Policy) {
				p.ImageAccess.OrgNamespaces = []string{"acme", "Acme", "acme", "", "a/b", "library", "my.org", "-x", "a___b"}
			},
			want: []FieldError{
				{"imageAccess.orgNamespaces[1]", `"Acme" is not a Docker Hub namespace: use lowercase letters, digits and single separators ("_", "__", "-")`},
				{"imageAccess.orgNamespaces[2]", `"acme" duplicates imageAccess.orgNamespaces[0]`},
				{"imageAccess.orgNamespaces[3]", "empty namespace"},
				{"imageAccess.orgNamespaces[4]", `"a/b" is not a Docker Hub namespace: a namespace is one name without "/"`},
				{"imageAccess.orgNamespaces[5]", `"library" is Docker Hub's namespace for official images, not an organization's`},
				{"imageAccess.orgNamespaces[6]", `"my.org" is not a Docker Hub namespace: docker reads it as a registry host`},
				{"imageAccess.orgNamespaces[7]", `"-x" is not a Docker Hub namespace: use lowercase letters, digits and single separators ("_", "__", "-")`},
				{"imageAccess.orgNamespaces[8]", `"a___b" is not a Docker Hub namespace: use lowercase letters, digits and single separators ("_", "__", "-")`},
			},
		},
		{
			name: "allowlist",
			edit: func(p *Policy) {
				p.ImageAccess.RepositoryAllowlist = []string{"redis", "library/redis", "bitnami/redis:7", "docker.io/bitnami/redis", "a/b/c", "Bitnami/redis", "", "bitnami/redis@sha256:" + strings.Repeat("a", 64)}
			},
			want: []FieldError{
				{"imageAccess.repositoryAllowlist[1]", `"library/redis" duplicates imageAccess.repositoryAllowlist[0]`},
				{"imageAccess.repositoryAllowlist[2]", `"bitnami/redis:7" names a tag or digest; list the repository only`},
				{"imageAccess.repositoryAllowlist[3]", `"docker.io/bitnami/redis" names a registry host; list Docker Hub repositories without it, like "bitnami/redis"`},
				{"imageAccess.repositoryAllowlist[4]", `"a/b/c" is not a Docker Hub repository: use NAMESPACE/NAME or NAME`},
				{"imageAccess.repositoryAllowlist[5]", `"Bitnami/redis": "Bitnami" is not a Docker Hub namespace: use lowercase letters, digits and single separators ("_", "__", "-")`},
				{"imageAccess.repositoryAllowlist[6]", "empty repository"},
				{"imageAccess.repositoryAllowlist[7]", quote("bitnami/redis@sha256:"+strings.Repeat("a", 64)) + " names a tag or digest; list the repository only"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := examplePolicy()
			tt.edit(&p)
			err := p.Validate(tt.limits)
			if err == nil {
				t.Fatal("Validate succeeded, want errors")
			}
			if diff := cmp.Diff(tt.want, fieldErrors(t, err)); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func numberedRegistries(n int) []Registry {
	rs := make([]Registry, n)
	for i := range rs {
		rs[i] = Registry{Host: fmt.Sprintf("r%d.example.com", i)}
	}
	return rs
}

func TestValidateReportsEverythingAtOnce(t *testing.T) {
	p := Policy{
		Org: "-bad",
		RegistryAccess: RegistryAccess{Enabled: true, Registries: []Registry{
			{Host: "a.example"}, {Host: "*"}, {Host: "127.1"}, {Host: "docker.io/library"},
		}},
		ImageAccess: ImageAccess{OfficialImages: "x"},
	}
	err := p.Validate(Limits{})
	got := fieldErrors(t, err)
	var fields []string
	for _, fe := range got {
		fields = append(fields, fe.Field)
	}
	want := []string{
		"org",
		"registryAccess.registries[1].host",
		"registryAccess.registries[2].host",
		"registryAccess.registries[3].host",
		"imageAccess.officialImages",
		"imageAccess.verifiedPublisherImages",
		"imageAccess.sponsoredOSSImages",
		"imageAccess.communityImages",
	}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("fields with errors (-want +got):\n%s", diff)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, `org: "-bad" is not a valid organization name`) ||
		!strings.Contains(msg, `; registryAccess.registries[2].host: "127.1" is not a hostname: it is a non-canonical IPv4 address`) {
		t.Errorf("Error() = %q, want field: message pairs joined by \"; \"", msg)
	}
}

func TestValidationErrorString(t *testing.T) {
	e := &ValidationError{Errors: []FieldError{{"a.b", "required"}, {"", "empty policy document"}, {"c[0]", "bad"}}}
	if got, want := e.Error(), "a.b: required; empty policy document; c[0]: bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (&ValidationError{}).Error(); got != "invalid policy" {
		t.Errorf("empty ValidationError.Error() = %q", got)
	}
}

func TestDefault(t *testing.T) {
	p := Default("acme")
	want := Policy{
		Org:            "acme",
		RegistryAccess: RegistryAccess{Enabled: true, Registries: []Registry{{Host: "docker-hub"}}},
		ImageAccess: ImageAccess{
			OfficialImages: Allowed, VerifiedPublisherImages: Allowed, SponsoredOSSImages: Allowed, CommunityImages: Allowed,
			OrgNamespaces: []string{}, RepositoryAllowlist: []string{},
		},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("Default (-want +got):\n%s", diff)
	}
	if p.ImageAccess.OrgNamespaces == nil || p.ImageAccess.RepositoryAllowlist == nil {
		t.Error("Default lists must be empty, not nil")
	}
	if err := p.Validate(Limits{}); err != nil {
		t.Errorf("Default does not validate: %v", err)
	}
}

func TestClone(t *testing.T) {
	p := examplePolicy()
	c := p.Clone()
	c.RegistryAccess.Registries[0].Host = "changed"
	c.ImageAccess.OrgNamespaces[0] = "changed"
	c.ImageAccess.RepositoryAllowlist[0] = "changed"
	if diff := cmp.Diff(examplePolicy(), p); diff != "" {
		t.Errorf("changing a clone changed the original (-want +got):\n%s", diff)
	}
}
