package inspect

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/regward/regward/internal/policy"
)

// redirectTarget reads the Location of a redirect answered by host:port
// and returns the host and port a client following it would connect to.
// ok is false when there is nothing to decide: the location stays on
// host:port, is not http or https, or cannot be read (a client cannot
// follow it either, and any connection it does make goes through the
// gateway's own checks).
func redirectTarget(host string, port uint16, location string) (string, uint16, bool) {
	loc, err := url.Parse(location)
	if err != nil {
		return "", 0, false
	}
	base := &url.URL{Scheme: "https", Host: authorityOf(host, port), Path: "/"}
	abs := base.ResolveReference(loc)
	var def uint16
	switch strings.ToLower(abs.Scheme) {
	case "https":
		def = 443
	case "http":
		def = 80
	default:
		return "", 0, false
	}
	name := abs.Hostname()
	if name == "" {
		return "", 0, false
	}
	h, err := policy.NormalizeHost(name)
	if err != nil {
		return "", 0, false
	}
	p := def
	if s := abs.Port(); s != "" {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || n == 0 {
			return "", 0, false
		}
		p = uint16(n)
	}
	if h == host && p == port {
		return "", 0, false
	}
	return h, p, true
}

// redirectReason is the denial of a redirect to a host the policy does not
// allow. It names the image so that an owner knows which registry needs
// the extra host.
func redirectReason(to string, org, image, from string) string {
	if image != "" {
		return "registry " + to + " is not allowed by organization " + org + ": image " + image +
			" redirects its downloads there; add " + to + " to the allowed registries too"
	}
	return "registry " + to + " is not allowed by organization " + org + ": registry " + from +
		" redirects requests there; add " + to + " to the allowed registries too"
}

// authorityOf renders host and port for a URL: IPv6 in brackets, the
// port left out when it is 443.
func authorityOf(host string, port uint16) string {
	h := host
	if strings.IndexByte(host, ':') >= 0 {
		h = "[" + host + "]"
	}
	if port == 443 || port == 0 {
		return h
	}
	return h + ":" + strconv.FormatUint(uint64(port), 10)
}
