package ociref

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/distribution/reference"
)

// DockerHub is the canonical host of Docker Hub references.
const DockerHub = "docker.io"

// Reference is an image reference split into the parts a policy decides on.
type Reference struct {
	Host       string // lowercase host name without port ("docker.io" for Docker Hub)
	Port       uint16 // 0 when the reference names none
	Repository string // path within the registry, e.g. "library/nginx"
	Tag        string
	Digest     string
}

// String is the fully qualified reference.
func (r Reference) String() string {
	var b strings.Builder
	if strings.Contains(r.Host, ":") {
		// An IPv6 literal: without brackets its colons would read as a port.
		b.WriteByte('[')
		b.WriteString(r.Host)
		b.WriteByte(']')
	} else if r.Port == 0 && r.Host != "localhost" && !strings.Contains(r.Host, ".") {
		// docker reads a first component without ".", ":" or a port as a
		// Docker Hub namespace unless it has an uppercase letter, which is
		// the only way such a registry name got here. Host names are case-
		// insensitive, so upper case renders the same registry faithfully.
		b.WriteString(strings.ToUpper(r.Host))
	} else {
		b.WriteString(r.Host)
	}
	if r.Port != 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(int(r.Port)))
	}
	b.WriteByte('/')
	b.WriteString(r.Repository)
	if r.Tag != "" {
		b.WriteByte(':')
		b.WriteString(r.Tag)
	}
	if r.Digest != "" {
		b.WriteByte('@')
		b.WriteString(r.Digest)
	}
	return b.String()
}

// ParseReference normalises an image reference the way docker does:
// "nginx" is docker.io/library/nginx, "index.docker.io/x/y" is docker.io/x/y.
// A reference without tag or digest gets no tag (callers that pull add
// "latest" themselves).
func ParseReference(s string) (Reference, error) {
	if s == "" {
		return Reference{}, errors.New("empty image reference")
	}
	if len(s) > 4096 {
		return Reference{}, errors.New("image reference is longer than 4096 characters")
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return Reference{}, fmt.Errorf("not a valid image reference: %w", err)
	}
	var r Reference
	domain := reference.Domain(named)
	r.Repository = reference.Path(named)
	host, port, err := splitDomain(domain)
	if err != nil {
		return Reference{}, err
	}
	if host == "index.docker.io" && port == 0 {
		host = DockerHub // docker's own legacy alias
	}
	// The library split above compares the domain case-sensitively, so
	// "Docker.IO/nginx" arrives here as "nginx"; once the host is folded to
	// Docker Hub the name must be folded the same way, or an official image
	// would be judged as something else.
	if host == DockerHub && port == 0 && !strings.Contains(r.Repository, "/") {
		r.Repository = "library/" + r.Repository
	}
	r.Host, r.Port = host, port
	if t, ok := named.(reference.Tagged); ok {
		r.Tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		r.Digest = d.Digest().String()
	}
	return r, nil
}

func splitDomain(domain string) (string, uint16, error) {
	host, portStr := domain, ""
	if strings.HasPrefix(domain, "[") || strings.Count(domain, ":") == 1 {
		h, p, err := net.SplitHostPort(domain)
		if err == nil {
			host, portStr = h, p
		} else if !strings.HasPrefix(domain, "[") {
			return "", 0, fmt.Errorf("registry %q: %w", domain, err)
		} else {
			host = strings.TrimSuffix(strings.TrimPrefix(domain, "["), "]")
		}
	}
	var port uint16
	if portStr != "" {
		n, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || n == 0 {
			return "", 0, fmt.Errorf("registry %q: port %q is not 1-65535", domain, portStr)
		}
		port = uint16(n)
	}
	return strings.ToLower(host), port, nil
}
