package policy

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testCatalog is built here so the tests do not depend on shipped data.
var testCatalog = Catalog{VerifiedPublishers: []string{"grafana", "bitnami"}, SponsoredOSS: []string{"prom"}}

func mustCompile(t testing.TB, p Policy) *Compiled {
	t.Helper()
	c, err := Compile(p, testCatalog)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return c
}

func TestDecide(t *testing.T) {
	const allows = "allows only official images, verified publisher images, its own namespaces (acme) and allowlisted repositories"
	tests := []struct {
		name string
		edit func(p *Policy)
		req  Request
		want Decision
	}{
		{
			name: "listed host",
			req:  Request{Host: "ghcr.io", Port: 443},
			want: Decision{Allowed: true, Host: "ghcr.io", Rule: "registryAccess.registries[1]", Reason: "registry ghcr.io is allowed by organization acme"},
		},
		{
			name: "unlisted host",
			req:  Request{Host: "quay.io", Port: 443},
			want: Decision{Host: "quay.io", Rule: "registryAccess",
				Reason: "registry quay.io is not allowed by organization acme; ask an owner to add it to the allowed registries"},
		},
		{
			name: "unlisted host on another port",
			req:  Request{Host: "quay.io", Port: 8443, Repository: "a/b", Action: ActionPull},
			want: Decision{Host: "quay.io", Repository: "a/b", Rule: "registryAccess",
				Reason: "registry quay.io:8443 is not allowed by organization acme; ask an owner to add it to the allowed registries"},
		},
		{
			name: "unlisted IPv6 with a port",
			req:  Request{Host: "2001:db8::1", Port: 5000},
			want: Decision{Host: "2001:db8::1", Rule: "registryAccess",
				Reason: "registry [2001:db8::1]:5000 is not allowed by organization acme; ask an owner to add it to the allowed registries"},
		},
		{
			name: "listed port only",
			req:  Request{Host: "registry.corp.example", Port: 5001},
			want: Decision{Host: "registry.corp.example", Rule: "registryAccess",
				Reason: "registry registry.corp.example:5001 is not allowed by organization acme; ask an owner to add it to the allowed registries"},
		},
		{
			name: "wildcard",
			req:  Request{Host: "1234.dkr.ecr.eu-west-1.amazonaws.com", Port: 443, Repository: "app", Action: ActionPush},
			want: Decision{Allowed: true, Host: "1234.dkr.ecr.eu-west-1.amazonaws.com", Repository: "app", Rule: "registryAccess.registries[2]",
				Reason: "registry 1234.dkr.ecr.eu-west-1.amazonaws.com is allowed by organization acme"},
		},
		{
			name: "registry access off",
			edit: func(p *Policy) { p.RegistryAccess.Enabled = false },
			req:  Request{Host: "quay.io", Port: 443, Repository: "a/b", Action: ActionPush},
			want: Decision{Allowed: true, Host: "quay.io", Repository: "a/b", Rule: "registryAccess.enabled", Reason: "organization acme allows every registry"},
		},
		{
			name: "pull from a pull-only registry",
			req:  Request{Host: "registry.corp.example", Port: 5000, Repository: "team/app", Action: ActionPull},
			want: Decision{Allowed: true, Host: "registry.corp.example", Repository: "team/app", Rule: "registryAccess.registries[3]",
				Reason: "registry registry.corp.example:5000 is allowed by organization acme"},
		},
		{
			name: "push to a pull-only registry",
			req:  Request{Host: "registry.corp.example", Port: 5000, Repository: "team/app", Action: ActionPush, Owner: true},
			want: Decision{Host: "registry.corp.example", Repository: "team/app", Rule: "registryAccess.registries[3].access",
				Reason: "registry registry.corp.example:5000 is pull-only for organization acme; pushing is not allowed"},
		},
		{
			name: "delete on a pull-only registry",
			req:  Request{Host: "registry.corp.example", Port: 5000, Repository: "team/app", Action: ActionDelete},
			want: Decision{Host: "registry.corp.example", Repository: "team/app", Rule: "registryAccess.registries[3].access",
				Reason: "registry registry.corp.example:5000 is pull-only for organization acme; pushing is not allowed"},
		},
		{
			name: "Docker Hub host level",
			req:  Request{Host: "registry-1.docker.io", Port: 443},
			want: Decision{Allowed: true, Host: "registry-1.docker.io", Rule: "registryAccess.registries[0]",
				Reason: "registry registry-1.docker.io is allowed by organization acme"},
		},
		{
			name: "official image",
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "alpine", Action: ActionPull},
			want: Decision{Allowed: true, Host: "registry-1.docker.io", Repository: "library/alpine", Category: CategoryOfficial,
				Rule: "imageAccess.officialImages", Reason: "image docker.io/library/alpine is an official image, which organization acme allows"},
		},
		{
			name: "verified publisher image",
			req:  Request{Host: "docker.io", Repository: "grafana/grafana", Action: ActionPull},
			want: Decision{Allowed: true, Host: "docker.io", Repository: "grafana/grafana", Category: CategoryVerifiedPublisher,
				Rule: "imageAccess.verifiedPublisherImages", Reason: "image docker.io/grafana/grafana is a verified publisher image, which organization acme allows"},
		},
		{
			name: "sponsored OSS image restricted",
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "prom/prometheus", Action: ActionPull},
			want: Decision{Host: "registry-1.docker.io", Repository: "prom/prometheus", Category: CategorySponsoredOSS,
				Rule: "imageAccess.sponsoredOSSImages", Reason: "image docker.io/prom/prometheus is a sponsored OSS image; organization acme " + allows},
		},
		{
			name: "community image restricted",
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "someone/tool", Action: ActionPull},
			want: Decision{Host: "registry-1.docker.io", Repository: "someone/tool", Category: CategoryCommunity,
				Rule: "imageAccess.communityImages", Reason: "image docker.io/someone/tool is a community image; organization acme " + allows},
		},
		{
			name: "host-level pull without an action still gets image rules",
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "someone/tool"},
			want: Decision{Host: "registry-1.docker.io", Repository: "someone/tool", Category: CategoryCommunity,
				Rule: "imageAccess.communityImages", Reason: "image docker.io/someone/tool is a community image; organization acme " + allows},
		},
		{
			name: "owner bypasses image rules",
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "someone/tool", Action: ActionPull, Owner: true},
			want: Decision{Allowed: true, Host: "registry-1.docker.io", Repository: "someone/tool", Category: CategoryCommunity,
				Rule: "ownerBypass", Reason: "image docker.io/someone/tool is a community image, restricted by organization acme; owners are exempt"},
		},
		{
			name: "owner does not bypass registry rules",
			req:  Request{Host: "quay.io", Port: 443, Repository: "a/b", Action: ActionPull, Owner: true},
			want: Decision{Host: "quay.io", Repository: "a/b", Rule: "registryAccess",
				Reason: "registry quay.io is not allowed by organization acme; ask an owner to add it to the allowed registries"},
		},
		{
			name: "org namespace",
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "acme/app", Action: ActionPull},
			want: Decision{Allowed: true, Host: "registry-1.docker.io", Repository: "acme/app", Category: CategoryOrg,
				Rule: "imageAccess.orgNamespaces", Reason: "image docker.io/acme/app is in a namespace of organization acme"},
		},
		{
			name: "allowlisted community repository",
			edit: func(p *Policy) { p.ImageAccess.RepositoryAllowlist = []string{"someone/tool"} },
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "someone/tool", Action: ActionPull},
			want: Decision{Allowed: true, Host: "registry-1.docker.io", Repository: "someone/tool", Category: CategoryCommunity,
				Rule: "imageAccess.repositoryAllowlist", Reason: "image docker.io/someone/tool is on the repository allowlist of organization acme"},
		},
		{
			name: "allowlisted official image by short name",
			edit: func(p *Policy) {
				p.ImageAccess.OfficialImages = Restricted
				p.ImageAccess.RepositoryAllowlist = []string{"redis"}
			},
			req: Request{Host: "registry-1.docker.io", Port: 443, Repository: "library/redis", Action: ActionPull},
			want: Decision{Allowed: true, Host: "registry-1.docker.io", Repository: "library/redis", Category: CategoryOfficial,
				Rule: "imageAccess.repositoryAllowlist", Reason: "image docker.io/library/redis is on the repository allowlist of organization acme"},
		},
		{
			name: "allowlist is per repository",
			edit: func(p *Policy) { p.ImageAccess.RepositoryAllowlist = []string{"someone/tool"} },
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "someone/other", Action: ActionPull},
			want: Decision{Host: "registry-1.docker.io", Repository: "someone/other", Category: CategoryCommunity,
				Rule: "imageAccess.communityImages", Reason: "image docker.io/someone/other is a community image; organization acme " + allows},
		},
		{
			name: "nothing allowed",
			edit: func(p *Policy) {
				ia := &p.ImageAccess
				ia.OfficialImages, ia.VerifiedPublisherImages = Restricted, Restricted
				ia.OrgNamespaces, ia.RepositoryAllowlist = nil, nil
			},
			req: Request{Host: "registry-1.docker.io", Port: 443, Repository: "alpine", Action: ActionPull},
			want: Decision{Host: "registry-1.docker.io", Repository: "library/alpine", Category: CategoryOfficial,
				Rule: "imageAccess.officialImages", Reason: "image docker.io/library/alpine is an official image; organization acme allows no Docker Hub images"},
		},
		{
			name: "one thing allowed",
			edit: func(p *Policy) {
				ia := &p.ImageAccess
				ia.VerifiedPublisherImages = Restricted
				ia.OrgNamespaces, ia.RepositoryAllowlist = nil, nil
			},
			req: Request{Host: "registry-1.docker.io", Port: 443, Repository: "grafana/loki", Action: ActionPull},
			want: Decision{Host: "registry-1.docker.io", Repository: "grafana/loki", Category: CategoryVerifiedPublisher,
				Rule: "imageAccess.verifiedPublisherImages", Reason: "image docker.io/grafana/loki is a verified publisher image; organization acme allows only official images"},
		},
		{
			name: "image access off",
			edit: func(p *Policy) { p.ImageAccess.Enabled = false },
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "someone/tool", Action: ActionPull},
			want: Decision{Allowed: true, Host: "registry-1.docker.io", Repository: "someone/tool", Category: CategoryCommunity,
				Rule: "registryAccess.registries[0]", Reason: "registry registry-1.docker.io is allowed by organization acme"},
		},
		{
			name: "image rules only on Docker Hub",
			req:  Request{Host: "ghcr.io", Port: 443, Repository: "someone/tool", Action: ActionPull},
			want: Decision{Allowed: true, Host: "ghcr.io", Repository: "someone/tool", Rule: "registryAccess.registries[1]",
				Reason: "registry ghcr.io is allowed by organization acme"},
		},
		{
			name: "push to an org namespace",
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "acme/app", Action: ActionPush},
			want: Decision{Allowed: true, Host: "registry-1.docker.io", Repository: "acme/app", Category: CategoryOrg,
				Rule: "namespaceAccess.pushOnlyToOrgNamespaces", Reason: "docker.io/acme/app is in a namespace of organization acme"},
		},
		{
			name: "push elsewhere on Docker Hub",
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "alice/app", Action: ActionPush},
			want: Decision{Host: "registry-1.docker.io", Repository: "alice/app", Category: CategoryCommunity,
				Rule:   "namespaceAccess.pushOnlyToOrgNamespaces",
				Reason: "pushing to docker.io/alice/app is not allowed: organization acme allows pushes on Docker Hub only to its own namespaces (acme)"},
		},
		{
			name: "delete elsewhere on Docker Hub, no namespaces listed",
			edit: func(p *Policy) { p.ImageAccess.OrgNamespaces = nil },
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "alice/app", Action: ActionDelete},
			want: Decision{Host: "registry-1.docker.io", Repository: "alice/app", Category: CategoryCommunity,
				Rule:   "namespaceAccess.pushOnlyToOrgNamespaces",
				Reason: "pushing to docker.io/alice/app is not allowed: organization acme allows pushes on Docker Hub only to its own namespaces, and lists none"},
		},
		{
			name: "owner pushes elsewhere",
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "alice/app", Action: ActionPush, Owner: true},
			want: Decision{Allowed: true, Host: "registry-1.docker.io", Repository: "alice/app", Category: CategoryCommunity,
				Rule: "ownerBypass", Reason: "docker.io/alice/app is outside organization acme's namespaces; owners are exempt"},
		},
		{
			name: "push with the namespace rule off",
			edit: func(p *Policy) { p.NamespaceAccess.PushOnlyToOrgNamespaces = false },
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "alice/app", Action: ActionPush},
			want: Decision{Allowed: true, Host: "registry-1.docker.io", Repository: "alice/app", Category: CategoryCommunity,
				Rule: "registryAccess.registries[0]", Reason: "registry registry-1.docker.io is allowed by organization acme"},
		},
		{
			name: "push to a pull-only Docker Hub",
			edit: func(p *Policy) { p.RegistryAccess.Registries[0].Access = AccessPull },
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "acme/app", Action: ActionPush},
			want: Decision{Host: "registry-1.docker.io", Repository: "acme/app", Category: CategoryOrg, Rule: "registryAccess.registries[0].access",
				Reason: "registry registry-1.docker.io is pull-only for organization acme; pushing is not allowed"},
		},
		{
			name: "Docker Hub repository denied at the registry level keeps its category",
			edit: func(p *Policy) { p.RegistryAccess.Registries = p.RegistryAccess.Registries[1:] },
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "alpine", Action: ActionPull},
			want: Decision{Host: "registry-1.docker.io", Repository: "library/alpine", Category: CategoryOfficial, Rule: "registryAccess",
				Reason: "registry registry-1.docker.io is not allowed by organization acme; ask an owner to add it to the allowed registries"},
		},
		{
			name: "uppercase namespace fails closed",
			req:  Request{Host: "registry-1.docker.io", Port: 443, Repository: "ACME/app", Action: ActionPull},
			want: Decision{Host: "registry-1.docker.io", Repository: "ACME/app", Category: CategoryCommunity,
				Rule: "imageAccess.communityImages", Reason: "image docker.io/ACME/app is a community image; organization acme " + allows},
		},
		{
			name: "first matching entry decides",
			edit: func(p *Policy) {
				p.RegistryAccess.Registries = []Registry{{Host: "*.example.com"}, {Host: "a.example.com", Access: AccessPull}}
			},
			req: Request{Host: "a.example.com", Port: 443, Repository: "x/y", Action: ActionPush},
			want: Decision{Allowed: true, Host: "a.example.com", Repository: "x/y", Rule: "registryAccess.registries[0]",
				Reason: "registry a.example.com is allowed by organization acme"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := examplePolicy()
			if tt.edit != nil {
				tt.edit(&p)
			}
			got := mustCompile(t, p).Decide(tt.req)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide(%+v) (-want +got):\n%s", tt.req, diff)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	c := mustCompile(t, examplePolicy())
	tests := map[string]Category{
		"alpine":          CategoryOfficial,
		"library/alpine":  CategoryOfficial,
		"acme/app":        CategoryOrg,
		"grafana/grafana": CategoryVerifiedPublisher,
		"bitnami/redis":   CategoryVerifiedPublisher,
		"prom/prometheus": CategorySponsoredOSS,
		"someone/tool":    CategoryCommunity,
		"grafanax/tool":   CategoryCommunity,
		"library":         CategoryOfficial, // a bare name is in library
	}
	for repo, want := range tests {
		if got := c.Classify(repo); got != want {
			t.Errorf("Classify(%q) = %q, want %q", repo, got, want)
		}
	}
	// The org's own namespace wins over a catalog list that also names it.
	p := examplePolicy()
	p.ImageAccess.OrgNamespaces = []string{"grafana"}
	if got := mustCompile(t, p).Classify("grafana/x"); got != CategoryOrg {
		t.Errorf("Classify of an org namespace on the verified list = %q, want org", got)
	}
}

func TestInspect(t *testing.T) {
	tests := []struct {
		name string
		edit func(p *Policy)
		host string
		port uint16
		want bool
	}{
		{"Docker Hub registry with image access", nil, "registry-1.docker.io", 443, true},
		{"docker.io with image access", nil, "docker.io", 443, true},
		{"Docker Hub blob CDN is not inspected", nil, "production.cloudflare.docker.com", 443, false},
		{"Docker Hub auth is not inspected", nil, "auth.docker.io", 443, false},
		{"plain registry", nil, "ghcr.io", 443, false},
		{"pull-only registry", nil, "registry.corp.example", 5000, true},
		{"pull-only entry on another port does not match", nil, "registry.corp.example", 5001, false},
		{"unlisted host", nil, "quay.io", 443, false},
		{"image and namespace access off", func(p *Policy) {
			p.ImageAccess.Enabled = false
			p.NamespaceAccess.PushOnlyToOrgNamespaces = false
		}, "registry-1.docker.io", 443, false},
		{"namespace access alone", func(p *Policy) { p.ImageAccess.Enabled = false }, "index.docker.io", 443, true},
		{"pull-only Docker Hub", func(p *Policy) {
			p.ImageAccess.Enabled = false
			p.NamespaceAccess.PushOnlyToOrgNamespaces = false
			p.RegistryAccess.Registries[0].Access = AccessPull
		}, "production.cloudflare.docker.com", 443, true},
		{"registry access off ignores pull-only", func(p *Policy) { p.RegistryAccess.Enabled = false }, "registry.corp.example", 5000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := examplePolicy()
			if tt.edit != nil {
				tt.edit(&p)
			}
			if got := mustCompile(t, p).Inspect(tt.host, tt.port); got != tt.want {
				t.Errorf("Inspect(%q, %d) = %v, want %v", tt.host, tt.port, got, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	p := examplePolicy()
	p.RegistryAccess.Registries = append(numberedRegistries(150), Registry{Host: "*"})
	_, err := Compile(p, Catalog{VerifiedPublishers: []string{"ok", "Not OK"}})
	got := fieldErrors(t, err)
	want := []FieldError{
		{"registryAccess.registries[150].host", `a bare "*" would allow every registry; turn registry access off instead`},
		{"catalog.verifiedPublishers[1]", `"Not OK" is not a Docker Hub namespace: use lowercase letters, digits and single separators ("_", "__", "-")`},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Compile errors (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(err.Error(), `compile policy of organization "acme": `) {
		t.Errorf("Compile error %q lacks context", err)
	}

	// Over the limit but otherwise valid: a stored policy stays enforceable
	// when the limit is lowered.
	p.RegistryAccess.Registries = numberedRegistries(150)
	if _, err := Compile(p, Catalog{}); err != nil {
		t.Errorf("Compile of a policy over the entry limit: %v", err)
	}
	var ve *ValidationError
	if err := p.Validate(Limits{}); !errors.As(err, &ve) {
		t.Errorf("Validate of 150 entries = %v, want a limit error", err)
	}
}

func TestCompiledIsolation(t *testing.T) {
	p := examplePolicy()
	c := mustCompile(t, p)
	p.RegistryAccess.Registries[1].Host = "quay.io"
	p.ImageAccess.OrgNamespaces[0] = "other"
	if diff := cmp.Diff(examplePolicy(), c.Policy()); diff != "" {
		t.Errorf("changing the input changed the compiled policy (-want +got):\n%s", diff)
	}
	got := c.Policy()
	got.RegistryAccess.Registries[0].Host = "changed"
	if c.Policy().RegistryAccess.Registries[0].Host != DockerHubGroup {
		t.Error("Policy() returned the compiled policy's own slices")
	}
}

func TestDecideConcurrent(t *testing.T) {
	c := mustCompile(t, examplePolicy())
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				d := c.Decide(Request{Host: "registry-1.docker.io", Port: 443, Repository: "someone/tool", Action: ActionPull})
				if d.Allowed {
					t.Error("community image allowed")
					return
				}
				_ = c.Inspect("registry-1.docker.io", 443)
			}
		}()
	}
	wg.Wait()
}

func BenchmarkDecide(b *testing.B) {
	c := mustCompile(b, examplePolicy())
	reqs := []Request{
		{Host: "ghcr.io", Port: 443},
		{Host: "registry-1.docker.io", Port: 443, Repository: "someone/tool", Action: ActionPull},
		{Host: "quay.io", Port: 443},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Decide(reqs[i%len(reqs)])
	}
}
