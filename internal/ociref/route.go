package ociref

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// Kind is the OCI distribution endpoint a path names.
type Kind int

const (
	KindBase       Kind = iota + 1 // /v2/
	KindManifest                   // /v2/<name>/manifests/<reference>
	KindBlob                       // /v2/<name>/blobs/<digest>
	KindBlobUpload                 // /v2/<name>/blobs/uploads/[<uuid>]
	KindTags                       // /v2/<name>/tags/list
	KindReferrers                  // /v2/<name>/referrers/<digest>
	KindCatalog                    // /v2/_catalog
)

func (k Kind) String() string {
	switch k {
	case KindBase:
		return "base"
	case KindManifest:
		return "manifest"
	case KindBlob:
		return "blob"
	case KindBlobUpload:
		return "blob-upload"
	case KindTags:
		return "tags"
	case KindReferrers:
		return "referrers"
	case KindCatalog:
		return "catalog"
	}
	return "unknown"
}

// Action is what a request does to a repository; it matches policy.Action's
// values without importing policy.
type Action string

const (
	ActionNone   Action = ""       // /v2/ and _catalog: no repository
	ActionPull   Action = "pull"   // GET and HEAD
	ActionPush   Action = "push"   // POST, PUT, PATCH, and every upload request
	ActionDelete Action = "delete" // DELETE of a manifest or blob
)

// Route is a parsed distribution API request.
type Route struct {
	Kind      Kind
	Name      string // repository name, e.g. "library/alpine"
	Reference string // tag or digest, for manifests
	Digest    string // for blobs and referrers; a finished upload's ?digest= is not read here
	Upload    string // upload session ID; empty for the POST that starts an upload
	Action    Action
}

// Path renders the route back to the escaped path ParsePath accepts, so
// ParsePath(m, r.Path()) gives r again. The base route renders as "/v2/".
func (r Route) Path() string {
	switch r.Kind {
	case KindBase:
		return "/v2/"
	case KindCatalog:
		return "/v2/_catalog"
	case KindManifest:
		return "/v2/" + r.Name + "/manifests/" + r.Reference
	case KindBlob:
		return "/v2/" + r.Name + "/blobs/" + r.Digest
	case KindBlobUpload:
		return "/v2/" + r.Name + "/blobs/uploads/" + r.Upload
	case KindTags:
		return "/v2/" + r.Name + "/tags/list"
	case KindReferrers:
		return "/v2/" + r.Name + "/referrers/" + r.Digest
	}
	return ""
}

// The grammars of the OCI distribution spec.
var (
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
	tagRE       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	digestRE    = regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	// Upload IDs are opaque to clients; this is the unreserved set of RFC
	// 3986 plus "=", which covers the UUIDs and base64url state tokens
	// registries hand out, and nothing that changes how a path resolves.
	uploadRE = regexp.MustCompile(`^[A-Za-z0-9._=~-]{1,256}$`)
	hexRE    = regexp.MustCompile(`^[a-f0-9]+$`)
)

// registeredDigests are the algorithms the OCI image spec registers, with
// the length of their lowercase hex encoding. Other algorithms pass on the
// grammar alone: the spec leaves room for them and the registry decides.
var registeredDigests = map[string]int{"sha256": 64, "sha512": 128}

// maxName bounds a repository name (distribution's limit for the whole
// name is 255 characters).
const maxName = 255

// ErrNotDistribution is returned for paths outside /v2/.
var ErrNotDistribution = errors.New("not an OCI distribution API path")

// ParsePath parses the path of a request to a registry. It refuses rather
// than guesses: anything outside the grammar is an error, and on error the
// Route is zero.
//
// path must be the escaped path as it came over the wire (the request
// target, or url.URL.EscapedPath), not url.URL.Path: decoding first would
// turn "a%2Fb" into two components that the upstream registry sees as one,
// and the decision would be made about a different repository.
func ParsePath(method, path string) (Route, error) {
	r, err := parsePath(method, path)
	if err != nil {
		if errors.Is(err, ErrNotDistribution) {
			return Route{}, err
		}
		return Route{}, fmt.Errorf("%s %q: %w", method, path, err)
	}
	return r, nil
}

func parsePath(method, path string) (Route, error) {
	if path == "/v2" || path == "/v2/" {
		return Route{Kind: KindBase}, checkMethod(method, http.MethodGet, http.MethodHead)
	}
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return Route{}, ErrNotDistribution
	}
	if strings.ContainsAny(rest, "%\\?#") {
		return Route{}, errors.New("escaped characters, backslashes, queries and fragments are not allowed in the path")
	}
	if strings.HasPrefix(rest, "/") || strings.Contains(rest, "//") {
		return Route{}, errors.New("empty path segments are not allowed")
	}
	if rest == "_catalog" {
		return Route{Kind: KindCatalog}, checkMethod(method, http.MethodGet, http.MethodHead)
	}
	r, nameEnd, segs, err := parseEndpoint(rest)
	if err != nil {
		return Route{}, err
	}
	if nameEnd < 1 {
		return Route{}, errors.New("no repository name")
	}
	r.Name = strings.Join(segs[:nameEnd], "/")
	if err := checkName(r.Name); err != nil {
		return Route{}, err
	}
	r.Action, err = actionFor(r, method)
	if err != nil {
		return Route{}, err
	}
	return r, nil
}

// parseEndpoint reads the endpoint from the right end of the path: names may
// contain words such as "blobs" as components, but the endpoint keyword is
// always in a fixed place from the end. It returns the route without name
// and action, and where the name ends in segs.
func parseEndpoint(rest string) (r Route, nameEnd int, segs []string, err error) {
	segs = strings.Split(rest, "/")
	n := len(segs)
	switch {
	case n >= 2 && segs[n-2] == "manifests":
		r.Kind, r.Reference, nameEnd = KindManifest, segs[n-1], n-2
		if !tagRE.MatchString(r.Reference) {
			if err := checkDigest(r.Reference); err != nil {
				return Route{}, 0, nil, fmt.Errorf("%q is neither a tag nor a digest: %w", r.Reference, err)
			}
		}
	case n >= 3 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		r.Kind, r.Upload, nameEnd = KindBlobUpload, segs[n-1], n-3
		// "." and ".." would let a registry that cleans paths resolve the
		// request to a different endpoint than the one decided on.
		if r.Upload != "" && (!uploadRE.MatchString(r.Upload) || r.Upload == "." || r.Upload == "..") {
			return Route{}, 0, nil, fmt.Errorf("%q is not a valid upload ID", r.Upload)
		}
	case n >= 2 && segs[n-2] == "blobs":
		r.Kind, r.Digest, nameEnd = KindBlob, segs[n-1], n-2
		if err := checkDigest(r.Digest); err != nil {
			return Route{}, 0, nil, err
		}
	case n >= 2 && segs[n-2] == "tags" && segs[n-1] == "list":
		r.Kind, nameEnd = KindTags, n-2
	case n >= 2 && segs[n-2] == "referrers":
		r.Kind, r.Digest, nameEnd = KindReferrers, segs[n-1], n-2
		if err := checkDigest(r.Digest); err != nil {
			return Route{}, 0, nil, err
		}
	default:
		return Route{}, 0, nil, errors.New("not a distribution API endpoint")
	}
	return r, nameEnd, segs, nil
}

// checkDigest applies the digest grammar, and for registered algorithms the
// exact encoding, so "sha256:abc" is refused here rather than upstream.
func checkDigest(d string) error {
	if !digestRE.MatchString(d) {
		return fmt.Errorf("%q is not a digest (algorithm:encoded)", d)
	}
	alg, enc, _ := strings.Cut(d, ":")
	if want, ok := registeredDigests[alg]; ok && (len(enc) != want || !hexRE.MatchString(enc)) {
		return fmt.Errorf("%q is not a %s digest: want %d lowercase hex characters", d, alg, want)
	}
	return nil
}

func checkMethod(method string, allowed ...string) error {
	for _, m := range allowed {
		if method == m {
			return nil
		}
	}
	return fmt.Errorf("method %s is not allowed here", method)
}

// actionFor maps a method on an endpoint to pull, push or delete. Methods
// the spec does not define for an endpoint are errors: a request the
// parser cannot classify must not be passed as a pull.
func actionFor(r Route, method string) (Action, error) {
	if r.Kind == KindBlobUpload {
		return uploadAction(r.Upload, method)
	}
	switch method {
	case http.MethodGet, http.MethodHead:
		return ActionPull, nil
	case http.MethodDelete:
		if r.Kind == KindManifest || r.Kind == KindBlob {
			return ActionDelete, nil
		}
	case http.MethodPut:
		if r.Kind == KindManifest {
			return ActionPush, nil
		}
	}
	return "", fmt.Errorf("method %s is not allowed on %s", method, r.Kind)
}

// uploadAction: every request of an upload session is part of a push,
// including its status (GET) and its cancellation (DELETE). POST starts a
// session and so has no ID; every other method names one.
func uploadAction(id, method string) (Action, error) {
	switch method {
	case http.MethodPost:
		if id == "" {
			return ActionPush, nil
		}
		return "", errors.New("method POST starts an upload and takes no upload ID")
	case http.MethodGet, http.MethodHead, http.MethodPatch, http.MethodPut, http.MethodDelete:
		if id != "" {
			return ActionPush, nil
		}
		return "", fmt.Errorf("method %s on an upload needs an upload ID", method)
	}
	return "", fmt.Errorf("method %s is not allowed on %s", method, KindBlobUpload)
}
