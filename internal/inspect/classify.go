package inspect

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/regward/regward/internal/ociref"
	"github.com/regward/regward/internal/policy"
)

// request is what the inspector reads from one client request before
// deciding it.
type request struct {
	route    ociref.Route // zero Kind: not a distribution API path
	action   policy.Action
	mount    ociref.Mount
	hasMount bool
}

// refusal answers a request refused before any decision.
type refusal struct {
	status  int
	code    string // OCI error code
	message string
}

// maxShownPath bounds the request path quoted back in a refusal.
const maxShownPath = 256

// classify reads a request made inside the tunnel to host:port: its
// target (u, as parsed by net/http), its authority (Host header or
// :authority) and, for distribution API paths, the route and the action.
// It refuses rather than guesses: a request it cannot read is never
// forwarded.
func classify(method string, u *url.URL, authority, host string, port uint16) (request, *refusal) {
	if method == http.MethodConnect {
		return request{}, &refusal{http.StatusMethodNotAllowed, "UNSUPPORTED", "CONNECT inside an inspected tunnel is not supported"}
	}
	if u.Opaque != "" || u.User != nil || u.Fragment != "" {
		return request{}, &refusal{http.StatusBadRequest, "UNSUPPORTED", "the request target is not a path"}
	}
	if u.Host != "" && (!strings.EqualFold(u.Scheme, "https") || !authorityMatches(u.Host, host, port)) {
		return request{}, &refusal{http.StatusMisdirectedRequest, "DENIED", "request for " + clip(u.Host, 128) + " sent in the tunnel to " + policy.JoinHostPort(host, port)}
	}
	if authority != "" && !authorityMatches(authority, host, port) {
		return request{}, &refusal{http.StatusMisdirectedRequest, "DENIED", "request for " + clip(authority, 128) + " sent in the tunnel to " + policy.JoinHostPort(host, port)}
	}
	path := u.EscapedPath()
	if !strings.HasPrefix(path, "/") {
		return request{}, &refusal{http.StatusBadRequest, "UNSUPPORTED", "the request target is not a path"}
	}
	route, err := ociref.ParsePath(method, path)
	switch {
	case errors.Is(err, ociref.ErrNotDistribution):
		return classifyOther(method, path)
	case err != nil:
		code := "NAME_INVALID"
		if _, gerr := ociref.ParsePath(http.MethodGet, path); gerr == nil {
			code = "UNSUPPORTED" // the path is fine, the method is not
		}
		return request{}, &refusal{http.StatusBadRequest, code, "malformed registry request: " + clip(err.Error(), maxShownPath)}
	}
	rq := request{route: route, action: policy.Action(route.Action)}
	m, ok, err := ociref.ParseMount(route, u.RawQuery)
	if err != nil {
		return request{}, &refusal{http.StatusBadRequest, "NAME_INVALID", "malformed registry request: " + clip(err.Error(), maxShownPath)}
	}
	rq.mount, rq.hasMount = m, ok
	return rq, nil
}

// classifyOther decides what a path outside /v2/ is. Registries serve
// other things on their host (Harbor's token service, a UI, health
// checks): reads and POSTs, which token services use, are decided at the
// host level; PUT, PATCH and DELETE count as writes, so a pull-only
// registry refuses them. A path that some server could read as an API path
// after decoding or cleaning it is refused outright.
func classifyOther(method, path string) (request, *refusal) {
	if mayReachAPI(path) {
		return request{}, &refusal{http.StatusBadRequest, "NAME_INVALID", "malformed registry request: path " + quotePath(path) + " resembles a /v2/ API path; send API paths without encoding, dot segments or parameters"}
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPost:
		return request{}, nil
	case http.MethodPut, http.MethodPatch, http.MethodDelete:
		return request{action: policy.ActionPush}, nil
	}
	return request{}, &refusal{http.StatusMethodNotAllowed, "UNSUPPORTED", "method " + clip(method, 32) + " is not supported by the gateway"}
}

// mayReachAPI reports whether a path that is not literally a /v2/ path
// could become one on some server: after percent-decoding, dropping
// ";parameters" (Jetty, Tomcat), turning backslashes into slashes (IIS),
// merging slashes and resolving dot segments (nginx), or comparing case-
// insensitively. Such paths would be decided as host-level requests while
// the registry serves them as repository requests.
func mayReachAPI(path string) bool {
	p := path
	// Decode repeatedly: a server in front of another may decode once each.
	for range 3 {
		d, err := url.PathUnescape(p)
		if err != nil || d == p {
			break
		}
		p = d
	}
	p = strings.ReplaceAll(p, "\\", "/")
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if i := strings.IndexByte(s, ';'); i >= 0 {
			s = s[:i]
		}
		s = strings.TrimRight(s, " \t")
		switch s {
		case "", ".":
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
		default:
			segs = append(segs, s)
		}
	}
	return len(segs) > 0 && strings.EqualFold(segs[0], "v2")
}

// authorityMatches reports whether a Host header (or :authority, or the
// host of an absolute-form target) names the tunnel's host; a port, when
// given, must be the tunnel's.
func authorityMatches(authority, host string, port uint16) bool {
	h, p, err := policy.SplitHostPort(authority)
	return err == nil && h == host && (p == 0 || p == port)
}

func quotePath(p string) string {
	return `"` + clip(p, maxShownPath) + `"`
}

// clip shortens s to at most n bytes for a message, without splitting a
// UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && s[len(s)-1]&0xc0 == 0x80 {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xc0 {
		s = s[:len(s)-1]
	}
	return s + "..."
}

// stripMount removes the mount and from parameters of an upload query,
// keeping the others as they were sent, so that the registry starts a
// plain upload instead of mounting a blob the policy does not let the
// client read.
func stripMount(rawQuery string) string {
	var kept []string
	for _, kv := range strings.Split(rawQuery, "&") {
		if kv == "" {
			continue
		}
		k, _, _ := strings.Cut(kv, "=")
		if uk, err := url.QueryUnescape(k); err == nil && (uk == "mount" || uk == "from") {
			continue
		}
		kept = append(kept, kv)
	}
	return strings.Join(kept, "&")
}
