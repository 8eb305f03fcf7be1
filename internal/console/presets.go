package console

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/regward/regward/internal/policy"
)

// preset is a quick-add group of registry entries: a registry and the hosts
// it redirects blob downloads to, which must be allowed too.
type preset struct {
	Key   string
	Label string
	// Hosts may contain REGION, replaced by the region the owner enters.
	Hosts []string
	Note  string
	// Regional presets need the AWS region field.
	Regional bool
}

var presets = []preset{
	{Key: "docker-hub", Label: "Docker Hub", Hosts: []string{policy.DockerHubGroup},
		Note: "The docker-hub entry covers every Docker Hub host, including its blob CDN."},
	{Key: "ghcr", Label: "GitHub Container Registry", Hosts: []string{"ghcr.io", "pkg-containers.githubusercontent.com"},
		Note: "ghcr.io redirects layer downloads to pkg-containers.githubusercontent.com."},
	{Key: "quay", Label: "Quay", Hosts: []string{"quay.io", "cdn.quay.io", "cdn01.quay.io", "cdn02.quay.io", "cdn03.quay.io"},
		Note: "quay.io serves layers from its cdn*.quay.io hosts."},
	{Key: "gar", Label: "Google Artifact Registry", Hosts: []string{"*.pkg.dev"},
		Note: "*.pkg.dev covers every region's REGION-docker.pkg.dev host."},
	{Key: "ecr", Label: "Amazon ECR", Regional: true, Hosts: []string{
		"*.dkr.ecr.REGION.amazonaws.com",
		"prod-REGION-starport-layer-bucket.s3.REGION.amazonaws.com",
		"prod-REGION-starport-layer-bucket.s3.amazonaws.com",
	}, Note: "ECR redirects layer downloads to its S3 bucket for the region. *.s3.amazonaws.com would work too, but allows every S3 bucket."},
	{Key: "k8s", Label: "Kubernetes (registry.k8s.io)", Regional: true, Hosts: []string{
		"registry.k8s.io",
		"*.pkg.dev",
		"prod-registry-k8s-io-REGION.s3.dualstack.REGION.amazonaws.com",
	}, Note: "registry.k8s.io redirects to the nearest mirror: Artifact Registry (*.pkg.dev) or, from AWS, an S3 bucket of the region."},
}

func presetByKey(key string) (preset, bool) {
	for _, p := range presets {
		if p.Key == key {
			return p, true
		}
	}
	return preset{}, false
}

// regionPattern is an AWS region name such as eu-west-1 or us-gov-west-1.
var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)

// defaultRegion prefills the region field of the regional presets.
const defaultRegion = "us-east-1"

// hosts returns the preset's hosts for region.
func (p preset) hosts(region string) ([]string, error) {
	if p.Regional && !regionPattern.MatchString(region) {
		return nil, fmt.Errorf("AWS region %q: use a region name such as eu-west-1", region)
	}
	out := make([]string, len(p.Hosts))
	for i, h := range p.Hosts {
		out[i] = strings.ReplaceAll(h, "REGION", region)
	}
	return out, nil
}

// addHosts appends the hosts that rs does not list yet (compared the way the
// policy compares them) and returns how many it added.
func addHosts(rs []policy.Registry, hosts []string, description string) ([]policy.Registry, int) {
	have := make(map[string]bool, len(rs))
	for _, r := range rs {
		have[hostKey(r.Host)] = true
	}
	added := 0
	for _, h := range hosts {
		if have[hostKey(h)] {
			continue
		}
		have[hostKey(h)] = true
		rs = append(rs, policy.Registry{Host: h, Description: description})
		added++
	}
	return rs, added
}

// hostKey is a host entry in the form two equal entries share.
func hostKey(h string) string {
	h = strings.TrimSpace(h)
	if n, err := policy.NormalizeHost(h); err == nil {
		return n
	}
	return strings.ToLower(h)
}

// redirectHosts recognise the hosts that registries send layer downloads
// to, so that a denial of one can say which registry it serves: allowing
// the registry alone leaves its pulls failing half-way.
var redirectHosts = []struct {
	pattern  *regexp.Regexp
	registry string
}{
	{regexp.MustCompile(`^pkg-containers\.githubusercontent\.com$`), "GitHub Container Registry (ghcr.io)"},
	{regexp.MustCompile(`^cdn[0-9]*\.quay\.io$`), "Quay (quay.io)"},
	{regexp.MustCompile(`^prod-[a-z0-9-]+-starport-layer-bucket\.s3(\.[a-z0-9-]+)?\.amazonaws\.com$`), "Amazon ECR"},
	{regexp.MustCompile(`^prod-registry-k8s-io-[a-z0-9-]+\.s3\.dualstack\.[a-z0-9-]+\.amazonaws\.com$`), "Kubernetes (registry.k8s.io)"},
	{regexp.MustCompile(`^[a-z0-9-]+-docker\.pkg\.dev$`), "Google Artifact Registry and registry.k8s.io"},
}

// redirectNote explains a denied host that is a known redirect target, or
// returns "".
func redirectNote(host string) string {
	h := hostKey(host)
	for _, r := range redirectHosts {
		if r.pattern.MatchString(h) {
			return fmt.Sprintf("%s serves layer downloads for %s: allow it together with the registry (Quick add on the Registry access page lists both).", h, r.registry)
		}
	}
	return ""
}
