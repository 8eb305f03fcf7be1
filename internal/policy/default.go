package policy

// Default is the policy of a new org: registry access on with Docker Hub
// listed, image access off with every category allowed, namespace access off.
// Lists are empty rather than nil so the API shows [] and not null.
func Default(org string) Policy {
	return Policy{
		Org: org,
		RegistryAccess: RegistryAccess{
			Enabled:    true,
			Registries: []Registry{{Host: DockerHubGroup}},
		},
		ImageAccess: ImageAccess{
			Enabled:                 false,
			OfficialImages:          Allowed,
			VerifiedPublisherImages: Allowed,
			SponsoredOSSImages:      Allowed,
			CommunityImages:         Allowed,
			OrgNamespaces:           []string{},
			RepositoryAllowlist:     []string{},
		},
	}
}

// Clone returns a deep copy, so a policy can be handed to another goroutine
// or kept while the caller goes on editing its own. Nil lists stay nil.
func (p Policy) Clone() Policy {
	p.RegistryAccess.Registries = cloneSlice(p.RegistryAccess.Registries)
	p.ImageAccess.OrgNamespaces = cloneSlice(p.ImageAccess.OrgNamespaces)
	p.ImageAccess.RepositoryAllowlist = cloneSlice(p.ImageAccess.RepositoryAllowlist)
	return p
}

func cloneSlice[T any](s []T) []T {
	if s == nil {
		return nil
	}
	return append(make([]T, 0, len(s)), s...)
}
