package policy

// Access says what a registry entry lets members do on that registry.
type Access string

const (
	AccessPull     Access = "pull"      // pull only; needs inspection to tell push from pull
	AccessPullPush Access = "pull-push" // the default when an entry names none
)

// Restriction is the setting of one image category.
type Restriction string

const (
	Allowed    Restriction = "allowed"
	Restricted Restriction = "restricted"
)

// Category is the Docker Hub classification of an image.
type Category string

const (
	CategoryOfficial          Category = "official"
	CategoryVerifiedPublisher Category = "verified-publisher"
	CategorySponsoredOSS      Category = "sponsored-oss"
	CategoryCommunity         Category = "community"
	CategoryOrg               Category = "org" // one of the org's own namespaces
)

// Action is what a request does to a repository.
type Action string

const (
	ActionPull   Action = "pull"
	ActionPush   Action = "push"
	ActionDelete Action = "delete"
)

// DockerHubGroup is the built-in registry entry that stands for every Docker
// Hub host (see DockerHubHosts).
const DockerHubGroup = "docker-hub"

// DefaultMaxRegistries is the per-org entry limit Docker documents.
const DefaultMaxRegistries = 100

// Policy is an organization's whole access policy. Its JSON and YAML shapes
// are the contract of DESIGN.md "Policy model".
type Policy struct {
	Org             string          `json:"org" yaml:"org"`
	RegistryAccess  RegistryAccess  `json:"registryAccess" yaml:"registryAccess"`
	ImageAccess     ImageAccess     `json:"imageAccess" yaml:"imageAccess"`
	NamespaceAccess NamespaceAccess `json:"namespaceAccess" yaml:"namespaceAccess"`
}

// RegistryAccess is the allowlist of registry hosts.
type RegistryAccess struct {
	Enabled    bool       `json:"enabled" yaml:"enabled"`
	Registries []Registry `json:"registries" yaml:"registries"`
}

// Registry is one allowlist entry.
type Registry struct {
	Host        string `json:"host" yaml:"host"`
	Access      Access `json:"access,omitempty" yaml:"access,omitempty"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
}

// ImageAccess holds the Docker Hub image category rules.
type ImageAccess struct {
	Enabled                 bool        `json:"enabled" yaml:"enabled"`
	OfficialImages          Restriction `json:"officialImages" yaml:"officialImages"`
	VerifiedPublisherImages Restriction `json:"verifiedPublisherImages" yaml:"verifiedPublisherImages"`
	SponsoredOSSImages      Restriction `json:"sponsoredOSSImages" yaml:"sponsoredOSSImages"`
	CommunityImages         Restriction `json:"communityImages" yaml:"communityImages"`
	OrgNamespaces           []string    `json:"orgNamespaces" yaml:"orgNamespaces"`
	RepositoryAllowlist     []string    `json:"repositoryAllowlist" yaml:"repositoryAllowlist"`
}

// NamespaceAccess limits where members may push on Docker Hub.
type NamespaceAccess struct {
	PushOnlyToOrgNamespaces bool `json:"pushOnlyToOrgNamespaces" yaml:"pushOnlyToOrgNamespaces"`
}

// Limits bound a policy's size.
type Limits struct {
	MaxRegistries int // 0 means DefaultMaxRegistries
}

// Catalog holds the Docker Hub namespace lists used for classification.
type Catalog struct {
	VerifiedPublishers []string `json:"verifiedPublishers"`
	SponsoredOSS       []string `json:"sponsoredOSS"`
}

// Request is one access to be decided. Host is normalized (NormalizeHost);
// Repository is empty for a host-level (tunnel) decision.
type Request struct {
	Host       string
	Port       uint16 // 0: unknown
	Repository string // e.g. "library/alpine" on Docker Hub
	Action     Action // empty for host-level decisions
	Owner      bool   // the user is an owner of the org: image rules do not apply
}

// Decision is the outcome of a Request and the rule that produced it.
type Decision struct {
	Allowed    bool     `json:"allowed"`
	Host       string   `json:"host"`
	Repository string   `json:"repository,omitempty"`
	Category   Category `json:"category,omitempty"`
	Rule       string   `json:"rule"`
	Reason     string   `json:"reason"`
}

// FieldError is one problem with one field of a policy.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every problem found in a policy.
type ValidationError struct {
	Errors []FieldError
}

// Change is one difference between two policies, by field path.
type Change struct {
	Path   string `json:"path"`
	Before any    `json:"before,omitempty"`
	After  any    `json:"after,omitempty"`
}
