package policy

import (
	"fmt"
	"slices"
)

// Diff lists the field-level differences between two policies, in a stable
// order (the order of the fields in the policy).
//
// Registry entries are keyed by host, not by index, so removing one entry
// in the middle is one change: path `registryAccess.registries[host=H]`,
// Before only for a removal, After only for an addition, both for a change.
// A pure reordering of the remaining entries, which can change which entry
// decides, is one more change at `registryAccess.registries` with the hosts
// in their old and new order. For orgNamespaces and repositoryAllowlist,
// Before holds the items removed and After the items added.
func Diff(before, after Policy) []Change {
	var out []Change
	scalar := func(path string, b, a any) {
		if b != a {
			out = append(out, Change{Path: path, Before: b, After: a})
		}
	}
	scalar("org", before.Org, after.Org)
	scalar("registryAccess.enabled", before.RegistryAccess.Enabled, after.RegistryAccess.Enabled)
	out = append(out, diffRegistries(before.RegistryAccess.Registries, after.RegistryAccess.Registries)...)

	bi, ai := before.ImageAccess, after.ImageAccess
	scalar("imageAccess.enabled", bi.Enabled, ai.Enabled)
	br := []Restriction{bi.OfficialImages, bi.VerifiedPublisherImages, bi.SponsoredOSSImages, bi.CommunityImages}
	ar := []Restriction{ai.OfficialImages, ai.VerifiedPublisherImages, ai.SponsoredOSSImages, ai.CommunityImages}
	for i, f := range restrictionFields {
		scalar("imageAccess."+f, br[i], ar[i])
	}
	if c, ok := diffSet("imageAccess.orgNamespaces", bi.OrgNamespaces, ai.OrgNamespaces); ok {
		out = append(out, c)
	}
	if c, ok := diffSet("imageAccess.repositoryAllowlist", bi.RepositoryAllowlist, ai.RepositoryAllowlist); ok {
		out = append(out, c)
	}
	scalar("namespaceAccess.pushOnlyToOrgNamespaces", before.NamespaceAccess.PushOnlyToOrgNamespaces, after.NamespaceAccess.PushOnlyToOrgNamespaces)
	return out
}

// registryKeys keys entries by their canonical host, so that "GHCR.io" and
// "ghcr.io" are one entry. A repeated host (only in an invalid policy) gets
// "#2", "#3" so that no entry is lost from the diff.
func registryKeys(rs []Registry) []string {
	keys := make([]string, len(rs))
	count := make(map[string]int, len(rs))
	for i, r := range rs {
		k := r.Host
		if p, err := parsePattern(r.Host); err == nil {
			k = p.String()
		}
		count[k]++
		if n := count[k]; n > 1 {
			k = fmt.Sprintf("%s#%d", k, n)
		}
		keys[i] = k
	}
	return keys
}

func diffRegistries(before, after []Registry) []Change {
	bk, ak := registryKeys(before), registryKeys(after)
	bIndex := make(map[string]int, len(bk))
	for i, k := range bk {
		bIndex[k] = i
	}
	aIndex := make(map[string]int, len(ak))
	for i, k := range ak {
		aIndex[k] = i
	}
	path := func(k string) string { return "registryAccess.registries[host=" + k + "]" }

	var out []Change
	for i, k := range bk {
		if _, ok := aIndex[k]; !ok {
			out = append(out, Change{Path: path(k), Before: before[i]})
		}
	}
	for i, k := range ak {
		if j, ok := bIndex[k]; ok && before[j] != after[i] {
			out = append(out, Change{Path: path(k), Before: before[j], After: after[i]})
		}
	}
	for i, k := range ak {
		if _, ok := bIndex[k]; !ok {
			out = append(out, Change{Path: path(k), After: after[i]})
		}
	}
	// Order only matters among entries present on both sides; additions and
	// removals do not count as a reordering.
	var bCommon, aCommon []string
	for _, k := range bk {
		if _, ok := aIndex[k]; ok {
			bCommon = append(bCommon, k)
		}
	}
	for _, k := range ak {
		if _, ok := bIndex[k]; ok {
			aCommon = append(aCommon, k)
		}
	}
	if !slices.Equal(bCommon, aCommon) {
		out = append(out, Change{Path: "registryAccess.registries", Before: bk, After: ak})
	}
	return out
}

// diffSet reports the items removed (Before) and added (After), each in its
// list's order.
func diffSet(path string, before, after []string) (Change, bool) {
	inBefore, inAfter := setOf(before), setOf(after)
	var removed, added []string
	for _, s := range before {
		if !inAfter[s] {
			removed = append(removed, s)
		}
	}
	for _, s := range after {
		if !inBefore[s] {
			added = append(added, s)
		}
	}
	if removed == nil && added == nil {
		return Change{}, false
	}
	c := Change{Path: path}
	if removed != nil {
		c.Before = removed
	}
	if added != nil {
		c.After = added
	}
	return c, true
}
