package policy

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/distribution/reference"
)

// orgNameRE is the contract's organization name: lowercase, so that names are
// one case everywhere (registry.json's allowedOrgs is case-sensitive).
var orgNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// maxDescription bounds an entry's free text; it is shown in the console and
// the activity log, not interpreted.
const maxDescription = 1024

// ValidOrgName reports whether s is a valid organization name.
func ValidOrgName(s string) bool {
	return orgNameRE.MatchString(s)
}

// Validate returns nil or a *ValidationError listing every problem, each
// naming its field, e.g. `registryAccess.registries[3].host: "docker.io/library" is not a hostname`.
func (p Policy) Validate(l Limits) error {
	var v problems
	p.validate(&v, l.maxRegistries())
	return v.err()
}

func (l Limits) maxRegistries() int {
	if l.MaxRegistries <= 0 {
		return DefaultMaxRegistries
	}
	return l.MaxRegistries
}

// validate checks everything; maxRegistries < 0 skips the size limit, which
// Compile does so that lowering the limit never stops a stored policy from
// being enforced.
func (p Policy) validate(v *problems, maxRegistries int) []hostPattern {
	switch {
	case p.Org == "":
		v.add("org", "required")
	case !ValidOrgName(p.Org):
		v.add("org", "%s is not a valid organization name: use 1 to 63 lowercase letters, digits, \"_\" or \"-\", starting with a letter or digit", quote(p.Org))
	}
	patterns := p.RegistryAccess.validate(v, fieldRegistryAccess, maxRegistries)
	p.ImageAccess.validate(v, fieldImageAccess)
	return patterns
}

// validate returns the parsed patterns (zero values where an entry is bad)
// so that Compile does not parse them twice.
func (ra RegistryAccess) validate(v *problems, path string, maxRegistries int) []hostPattern {
	listPath := joinPath(path, "registries")
	if maxRegistries >= 0 && len(ra.Registries) > maxRegistries {
		v.add(listPath, "%d entries, the limit is %d", len(ra.Registries), maxRegistries)
	}
	patterns := make([]hostPattern, len(ra.Registries))
	seen := make(map[string]int, len(ra.Registries))
	for i, r := range ra.Registries {
		entry := indexPath(listPath, i)
		pat, err := parsePattern(r.Host)
		if err != nil {
			v.add(joinPath(entry, "host"), "%s", hostMessage(r.Host, err))
		} else {
			patterns[i] = pat
			key := pat.String()
			if first, dup := seen[key]; dup {
				v.add(joinPath(entry, "host"), "%s duplicates %s", quote(r.Host), indexPath(listPath, first))
			} else {
				seen[key] = i
			}
		}
		switch r.Access {
		case "", AccessPull, AccessPullPush:
		default:
			v.add(joinPath(entry, "access"), "%s is not an access value; use %s or %s", quote(string(r.Access)), AccessPull, AccessPullPush)
		}
		if len(r.Description) > maxDescription {
			v.add(joinPath(entry, "description"), "longer than %d characters", maxDescription)
		} else if !utf8.ValidString(r.Description) {
			v.add(joinPath(entry, "description"), "not valid UTF-8")
		}
	}
	return patterns
}

// hostMessage keeps "required" short and otherwise relies on the parser's
// message, which already quotes the entry.
func hostMessage(host string, err error) string {
	if host == "" {
		return "required"
	}
	return err.Error()
}

func (ia ImageAccess) validate(v *problems, path string) {
	restrictions := []Restriction{ia.OfficialImages, ia.VerifiedPublisherImages, ia.SponsoredOSSImages, ia.CommunityImages}
	for i, r := range restrictions {
		field := joinPath(path, restrictionFields[i])
		switch r {
		case Allowed, Restricted:
		case "":
			v.add(field, "required")
		default:
			v.add(field, "%s is not a restriction; use %s or %s", quote(string(r)), Allowed, Restricted)
		}
	}

	nsPath := joinPath(path, "orgNamespaces")
	seenNS := make(map[string]int, len(ia.OrgNamespaces))
	for i, ns := range ia.OrgNamespaces {
		field := indexPath(nsPath, i)
		if err := checkNamespace(ns); err != nil {
			v.add(field, "%s", err)
			continue
		}
		if first, dup := seenNS[ns]; dup {
			v.add(field, "%s duplicates %s", quote(ns), indexPath(nsPath, first))
			continue
		}
		seenNS[ns] = i
	}

	alPath := joinPath(path, "repositoryAllowlist")
	seenRepo := make(map[string]int, len(ia.RepositoryAllowlist))
	for i, repo := range ia.RepositoryAllowlist {
		field := indexPath(alPath, i)
		full, err := normalizeRepository(repo)
		if err != nil {
			v.add(field, "%s", err)
			continue
		}
		if first, dup := seenRepo[full]; dup {
			v.add(field, "%s duplicates %s", quote(repo), indexPath(alPath, first))
			continue
		}
		seenRepo[full] = i
	}
}

// checkNamespace accepts one organization namespace on Docker Hub.
func checkNamespace(ns string) error {
	if ns == "library" {
		return fmt.Errorf(`"library" is Docker Hub's namespace for official images, not an organization's`)
	}
	return namespaceSyntax(ns)
}

// namespaceSyntax accepts a single path component of the distribution
// reference grammar without ".": docker reads a first component with "." or
// ":" as a registry host, so such a namespace could never be named on Docker
// Hub in the short form people write.
func namespaceSyntax(ns string) error {
	if ns == "" {
		return fmt.Errorf("empty namespace")
	}
	if strings.IndexByte(ns, '/') >= 0 {
		return fmt.Errorf("%s is not a Docker Hub namespace: a namespace is one name without \"/\"", quote(ns))
	}
	if strings.ContainsAny(ns, ".:") || ns == "localhost" {
		return fmt.Errorf("%s is not a Docker Hub namespace: docker reads it as a registry host", quote(ns))
	}
	// Parsed under an explicit docker.io with a dummy repository so that the
	// grammar is distribution's own.
	if _, err := reference.ParseNamed("docker.io/" + ns + "/x"); err != nil {
		return fmt.Errorf("%s is not a Docker Hub namespace: use lowercase letters, digits and single separators (\"_\", \"__\", \"-\")", quote(ns))
	}
	return nil
}

// normalizeRepository turns an allowlist entry or a requested Docker Hub
// repository into "namespace/name": a bare "redis" is "library/redis", as
// docker itself reads it.
func normalizeRepository(repo string) (string, error) {
	if repo == "" {
		return "", fmt.Errorf("empty repository")
	}
	ns, name, found := strings.Cut(repo, "/")
	if !found {
		ns, name = "library", repo
	}
	if strings.ContainsAny(ns, ".:") || ns == "localhost" {
		return "", fmt.Errorf("%s names a registry host; list Docker Hub repositories without it, like %s", quote(repo), quote(name))
	}
	if strings.IndexByte(name, '/') >= 0 {
		return "", fmt.Errorf("%s is not a Docker Hub repository: use NAMESPACE/NAME or NAME", quote(repo))
	}
	if err := namespaceSyntax(ns); err != nil {
		return "", fmt.Errorf("%s: %w", quote(repo), err)
	}
	full := ns + "/" + name
	named, err := reference.ParseNamed("docker.io/" + full)
	if err != nil {
		return "", fmt.Errorf("%s is not a Docker Hub repository name: %v", quote(repo), err)
	}
	if !reference.IsNameOnly(named) {
		return "", fmt.Errorf("%s names a tag or digest; list the repository only", quote(repo))
	}
	return full, nil
}
