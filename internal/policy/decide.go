package policy

import (
	"fmt"
	"strings"
)

// Compiled is a validated policy ready for fast decisions; safe for
// concurrent use, since nothing in it changes after Compile.
type Compiled struct {
	policy    Policy
	matcher   *Matcher
	access    []Access // effective access of each registry entry
	rules     []string // "registryAccess.registries[i]", built once
	orgNS     map[string]bool
	allowlist map[string]bool // normalized "namespace/name"
	verified  map[string]bool
	sponsored map[string]bool
	allows    string // what image access lets through, for denial reasons
	orgList   string // "acme, acme-ci" for reasons
}

// Compile validates p and builds its matcher and lookup sets. It checks
// everything Validate does except the entry limit: a limit lowered after a
// policy was saved must not stop that policy from being enforced.
func Compile(p Policy, cat Catalog) (*Compiled, error) {
	var v problems
	patterns := p.validate(&v, -1)
	cat.validate(&v)
	if err := v.err(); err != nil {
		return nil, fmt.Errorf("compile policy of organization %q: %w", p.Org, err)
	}
	p = p.Clone()
	c := &Compiled{
		policy:    p,
		matcher:   newMatcher(patterns),
		access:    make([]Access, len(p.RegistryAccess.Registries)),
		rules:     make([]string, len(p.RegistryAccess.Registries)),
		orgNS:     setOf(p.ImageAccess.OrgNamespaces),
		allowlist: make(map[string]bool, len(p.ImageAccess.RepositoryAllowlist)),
		verified:  setOf(cat.VerifiedPublishers),
		sponsored: setOf(cat.SponsoredOSS),
		orgList:   strings.Join(p.ImageAccess.OrgNamespaces, ", "),
	}
	for i, r := range p.RegistryAccess.Registries {
		c.rules[i] = indexPath("registryAccess.registries", i)
		c.access[i] = r.Access
		if c.access[i] == "" {
			c.access[i] = AccessPullPush
		}
	}
	for _, repo := range p.ImageAccess.RepositoryAllowlist {
		full, _ := normalizeRepository(repo) // validated above
		c.allowlist[full] = true
	}
	c.allows = c.allowsPhrase()
	return c, nil
}

func (cat Catalog) validate(v *problems) {
	for i, ns := range cat.VerifiedPublishers {
		if err := namespaceSyntax(ns); err != nil {
			v.add(indexPath("catalog.verifiedPublishers", i), "%s", err)
		}
	}
	for i, ns := range cat.SponsoredOSS {
		if err := namespaceSyntax(ns); err != nil {
			v.add(indexPath("catalog.sponsoredOSS", i), "%s", err)
		}
	}
}

func setOf(items []string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[s] = true
	}
	return m
}

// Policy returns a copy of the compiled policy.
func (c *Compiled) Policy() Policy {
	return c.policy.Clone()
}

// Decide applies the policy to one request, in the order of DESIGN.md:
// registry access, then pull-only entries, then on Docker Hub the namespace
// rule for writes and image access for pulls.
func (c *Compiled) Decide(r Request) Decision {
	org := c.policy.Org
	shown := JoinHostPort(r.Host, r.Port)
	d := Decision{Host: r.Host}
	hub := r.Repository != "" && IsDockerHub(r.Host)
	var ns string
	if hub {
		d.Repository = canonicalRepository(r.Repository)
		ns, _, _ = strings.Cut(d.Repository, "/")
		d.Category = c.Classify(d.Repository)
	} else {
		d.Repository = r.Repository
	}

	entry := -1
	if !c.policy.RegistryAccess.Enabled {
		d = d.allow("registryAccess.enabled", "organization %s allows every registry", org)
	} else if i, ok := c.matcher.Match(r.Host, r.Port); ok {
		entry = i
		d = d.allow(c.rules[i], "registry %s is allowed by organization %s", shown, org)
	} else {
		return d.deny("registryAccess", "registry %s is not allowed by organization %s; ask an owner to add it to the allowed registries", shown, org)
	}

	write := r.Action == ActionPush || r.Action == ActionDelete
	if write && entry >= 0 && c.access[entry] == AccessPull {
		return d.deny(c.rules[entry]+".access", "registry %s is pull-only for organization %s; pushing is not allowed", shown, org)
	}
	if !hub {
		return d
	}
	if write {
		return c.decidePush(d, r, ns)
	}
	return c.decidePull(d, r)
}

// decidePush applies namespaceAccess to a push or delete on Docker Hub; d
// already carries the registry decision that allowed the host.
func (c *Compiled) decidePush(d Decision, r Request, ns string) Decision {
	if !c.policy.NamespaceAccess.PushOnlyToOrgNamespaces {
		return d
	}
	const rule = "namespaceAccess.pushOnlyToOrgNamespaces"
	org, image := c.policy.Org, "docker.io/"+d.Repository
	switch {
	case c.orgNS[ns]:
		return d.allow(rule, "%s is in a namespace of organization %s", image, org)
	case r.Owner:
		return d.allow(ruleOwnerBypass, "%s is outside organization %s's namespaces; owners are exempt", image, org)
	case c.orgList == "":
		return d.deny(rule, "pushing to %s is not allowed: organization %s allows pushes on Docker Hub only to its own namespaces, and lists none", image, org)
	default:
		return d.deny(rule, "pushing to %s is not allowed: organization %s allows pushes on Docker Hub only to its own namespaces (%s)", image, org, c.orgList)
	}
}

// decidePull applies imageAccess to a pull on Docker Hub: the org's own
// namespaces, then the allowlist, then the category, then the owner bypass.
func (c *Compiled) decidePull(d Decision, r Request) Decision {
	if !c.policy.ImageAccess.Enabled {
		return d
	}
	org, image := c.policy.Org, "docker.io/"+d.Repository
	rule, restriction := c.categoryRule(d.Category)
	switch {
	case d.Category == CategoryOrg:
		return d.allow("imageAccess.orgNamespaces", "image %s is in a namespace of organization %s", image, org)
	case c.allowlist[d.Repository]:
		return d.allow("imageAccess.repositoryAllowlist", "image %s is on the repository allowlist of organization %s", image, org)
	case restriction == Allowed:
		return d.allow(rule, "image %s is %s, which organization %s allows", image, categoryPhrase(d.Category), org)
	case r.Owner:
		return d.allow(ruleOwnerBypass, "image %s is %s, restricted by organization %s; owners are exempt", image, categoryPhrase(d.Category), org)
	default:
		return d.deny(rule, "image %s is %s; organization %s %s", image, categoryPhrase(d.Category), org, c.allows)
	}
}

const ruleOwnerBypass = "ownerBypass"

func (d Decision) allow(rule, format string, args ...any) Decision {
	d.Allowed, d.Rule, d.Reason = true, rule, fmt.Sprintf(format, args...)
	return d
}

func (d Decision) deny(rule, format string, args ...any) Decision {
	d.Allowed, d.Rule, d.Reason = false, rule, fmt.Sprintf(format, args...)
	return d
}

// canonicalRepository reads a Docker Hub repository the way docker does: a
// single name is in "library". It does not validate; a malformed name simply
// matches no list and classifies as community, which fails closed.
func canonicalRepository(repo string) string {
	if strings.IndexByte(repo, '/') < 0 {
		return "library/" + repo
	}
	return repo
}

// Classify returns the category of a Docker Hub repository ("library/x" is
// official, a bare "x" too).
func (c *Compiled) Classify(repository string) Category {
	ns, _, _ := strings.Cut(canonicalRepository(repository), "/")
	switch {
	case ns == "library":
		return CategoryOfficial
	case c.orgNS[ns]:
		return CategoryOrg
	case c.verified[ns]:
		return CategoryVerifiedPublisher
	case c.sponsored[ns]:
		return CategorySponsoredOSS
	default:
		return CategoryCommunity
	}
}

// categoryRule names the imageAccess field that governs a category.
func (c *Compiled) categoryRule(cat Category) (string, Restriction) {
	ia := c.policy.ImageAccess
	switch cat {
	case CategoryOfficial:
		return "imageAccess.officialImages", ia.OfficialImages
	case CategoryVerifiedPublisher:
		return "imageAccess.verifiedPublisherImages", ia.VerifiedPublisherImages
	case CategorySponsoredOSS:
		return "imageAccess.sponsoredOSSImages", ia.SponsoredOSSImages
	case CategoryOrg:
		return "imageAccess.orgNamespaces", Allowed
	default:
		return "imageAccess.communityImages", ia.CommunityImages
	}
}

func categoryPhrase(cat Category) string {
	switch cat {
	case CategoryOfficial:
		return "an official image"
	case CategoryVerifiedPublisher:
		return "a verified publisher image"
	case CategorySponsoredOSS:
		return "a sponsored OSS image"
	case CategoryOrg:
		return "an organization image"
	default:
		return "a community image"
	}
}

// allowsPhrase says what image access lets through, so that a denied user
// learns what they may pull instead: "allows only official images, its own
// namespaces (acme) and allowlisted repositories".
func (c *Compiled) allowsPhrase() string {
	ia := c.policy.ImageAccess
	var parts []string
	for _, x := range []struct {
		r    Restriction
		what string
	}{
		{ia.OfficialImages, "official images"},
		{ia.VerifiedPublisherImages, "verified publisher images"},
		{ia.SponsoredOSSImages, "sponsored OSS images"},
		{ia.CommunityImages, "community images"},
	} {
		if x.r == Allowed {
			parts = append(parts, x.what)
		}
	}
	if c.orgList != "" {
		parts = append(parts, "its own namespaces ("+c.orgList+")")
	}
	if len(c.allowlist) > 0 {
		parts = append(parts, "allowlisted repositories")
	}
	switch len(parts) {
	case 0:
		return "allows no Docker Hub images"
	case 1:
		return "allows only " + parts[0]
	default:
		return "allows only " + strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
	}
}

// Inspect reports whether connections to host:port must be opened up to see
// each request: Docker Hub's registry API when image or namespace rules are
// on, and any registry whose matching entry is pull-only.
func (c *Compiled) Inspect(host string, port uint16) bool {
	if IsDockerHubRegistry(host) && (c.policy.ImageAccess.Enabled || c.policy.NamespaceAccess.PushOnlyToOrgNamespaces) {
		return true
	}
	if !c.policy.RegistryAccess.Enabled {
		return false
	}
	i, ok := c.matcher.Match(host, port)
	return ok && c.access[i] == AccessPull
}
