package policy

// TEMPORARY: signatures of the package API; bodies are being written.

func (e *ValidationError) Error() string { panic("unimplemented") }

// Default is the policy of a new org: registry access on with Docker Hub
// listed, image access off, namespace access off.
func Default(org string) Policy { panic("unimplemented") }

// Decode parses a whole policy document (JSON or YAML) strictly: unknown
// fields, wrong types and missing required fields come back as one
// *ValidationError naming each field. It does not call Validate.
func Decode(data []byte) (Policy, error) { panic("unimplemented") }

// DecodeRegistryAccess and DecodeImageAccess parse one section the same way.
func DecodeRegistryAccess(data []byte) (RegistryAccess, error) { panic("unimplemented") }
func DecodeImageAccess(data []byte) (ImageAccess, error)       { panic("unimplemented") }

// Validate returns nil or a *ValidationError listing every problem, each
// naming its field, e.g. `registryAccess.registries[3].host: "docker.io/library" is not a hostname`.
func (p Policy) Validate(l Limits) error { panic("unimplemented") }

// NormalizeHost returns the canonical form of a host name or IP literal
// (lowercase, IDNA ToASCII, one trailing dot removed, IPv6 without brackets).
func NormalizeHost(s string) (string, error) { panic("unimplemented") }

// SplitHostPort parses "host", "host:port" or "[v6]:port" and normalizes the host.
func SplitHostPort(s string) (host string, port uint16, err error) { panic("unimplemented") }

// IsDockerHub reports whether a normalized host is one of DockerHubHosts.
func IsDockerHub(host string) bool { panic("unimplemented") }

// DockerHubHosts are the hosts of the docker-hub group.
func DockerHubHosts() []string { panic("unimplemented") }

// Matcher finds the registry entry that matches a host; it indexes entries by
// label so lookups do not scan.
type Matcher struct{}

// NewMatcher compiles host patterns (as in Registry.Host).
func NewMatcher(patterns []string) (*Matcher, error) { panic("unimplemented") }

// Match returns the lowest index of a pattern that matches the normalized host and port.
func (m *Matcher) Match(host string, port uint16) (int, bool) { panic("unimplemented") }

// DefaultCatalog is the namespace lists shipped with regward.
func DefaultCatalog() Catalog { panic("unimplemented") }

// ParseNamespaceList parses a namespace list file: one namespace a line, '#' comments.
func ParseNamespaceList(data []byte) ([]string, error) { panic("unimplemented") }

// Compiled is a validated policy ready for fast decisions; safe for concurrent use.
type Compiled struct{}

func Compile(p Policy, cat Catalog) (*Compiled, error)    { panic("unimplemented") }
func (c *Compiled) Policy() Policy                        { panic("unimplemented") }
func (c *Compiled) Decide(r Request) Decision             { panic("unimplemented") }
func (c *Compiled) Inspect(host string, port uint16) bool { panic("unimplemented") }

// Classify returns the category of a Docker Hub repository ("library/x" is official).
func (c *Compiled) Classify(repository string) Category { panic("unimplemented") }

// Diff lists the field-level differences between two policies.
func Diff(before, after Policy) []Change { panic("unimplemented") }
