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
	ActionPush   Action = "push"   // POST, PUT, PATCH
	ActionDelete Action = "delete" // DELETE
)

// Route is a parsed distribution API request.
type Route struct {
	Kind      Kind
	Name      string // repository name, e.g. "library/alpine"
	Reference string // tag or digest, for manifests
	Digest    string // for blobs and referrers; a finished upload's ?digest= is not read here
	Upload    string // upload session ID
	Action    Action
}

// The grammars of the OCI distribution spec.
var (
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
	tagRE       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	digestRE    = regexp.MustCompile(`^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	uploadRE    = regexp.MustCompile(`^[A-Za-z0-9._=~-]{1,256}$`)
)

// maxName bounds a repository name (distribution's limit for the whole
// name is 255 characters).
const maxName = 255

// ErrNotDistribution is returned for paths outside /v2/.
var ErrNotDistribution = errors.New("not an OCI distribution API path")

// ParsePath parses the path of a request to a registry. It refuses rather
// than guesses: anything outside the grammar is an error.
func ParsePath(method, path string) (Route, error) {
	if path == "/v2" || path == "/v2/" {
		return Route{Kind: KindBase}, checkMethod(method, http.MethodGet, http.MethodHead)
	}
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return Route{}, ErrNotDistribution
	}
	if strings.ContainsAny(rest, "%\\?#") || strings.Contains(rest, "//") {
		return Route{}, fmt.Errorf("path %q: escaped characters or empty segments are not allowed", path)
	}
	if rest == "_catalog" {
		return Route{Kind: KindCatalog}, checkMethod(method, http.MethodGet, http.MethodHead)
	}
	segs := strings.Split(rest, "/")
	// Find the endpoint keyword from the right: names may contain words
	// such as "blobs" as components, the endpoint is always at the end.
	n := len(segs)
	var r Route
	var nameEnd int
	switch {
	case n >= 3 && segs[n-2] == "manifests":
		r.Kind, r.Reference, nameEnd = KindManifest, segs[n-1], n-2
		if !tagRE.MatchString(r.Reference) && !digestRE.MatchString(r.Reference) {
			return Route{}, fmt.Errorf("path %q: %q is neither a tag nor a digest", path, r.Reference)
		}
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		r.Kind, r.Upload, nameEnd = KindBlobUpload, segs[n-1], n-3
		if r.Upload != "" && !uploadRE.MatchString(r.Upload) {
			return Route{}, fmt.Errorf("path %q: bad upload ID", path)
		}
	case n >= 3 && segs[n-2] == "blobs":
		r.Kind, r.Digest, nameEnd = KindBlob, segs[n-1], n-2
		if !digestRE.MatchString(r.Digest) {
			return Route{}, fmt.Errorf("path %q: %q is not a digest", path, r.Digest)
		}
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		r.Kind, nameEnd = KindTags, n-2
	case n >= 3 && segs[n-2] == "referrers":
		r.Kind, r.Digest, nameEnd = KindReferrers, segs[n-1], n-2
		if !digestRE.MatchString(r.Digest) {
			return Route{}, fmt.Errorf("path %q: %q is not a digest", path, r.Digest)
		}
	default:
		return Route{}, fmt.Errorf("path %q: not a distribution API endpoint", path)
	}
	if nameEnd < 1 {
		return Route{}, fmt.Errorf("path %q: no repository name", path)
	}
	for _, c := range segs[:nameEnd] {
		if !componentRE.MatchString(c) {
			return Route{}, fmt.Errorf("path %q: %q is not a valid repository name component", path, c)
		}
	}
	r.Name = strings.Join(segs[:nameEnd], "/")
	if len(r.Name) > maxName {
		return Route{}, fmt.Errorf("path %q: repository name longer than %d characters", path, maxName)
	}
	var err error
	r.Action, err = actionFor(r.Kind, method)
	if err != nil {
		return Route{}, fmt.Errorf("path %q: %w", path, err)
	}
	return r, nil
}

func checkMethod(method string, allowed ...string) error {
	for _, m := range allowed {
		if method == m {
			return nil
		}
	}
	return fmt.Errorf("method %s is not allowed here", method)
}

// actionFor maps a method on an endpoint to pull, push or delete.
func actionFor(k Kind, method string) (Action, error) {
	switch method {
	case http.MethodGet, http.MethodHead:
		if k == KindBlobUpload {
			return ActionPush, nil // upload status is part of a push
		}
		return ActionPull, nil
	case http.MethodDelete:
		if k == KindTags || k == KindReferrers {
			return "", fmt.Errorf("method DELETE is not allowed on %s", k)
		}
		if k == KindBlobUpload {
			return ActionPush, nil // cancelling an upload
		}
		return ActionDelete, nil
	case http.MethodPut:
		if k == KindManifest || k == KindBlobUpload {
			return ActionPush, nil
		}
	case http.MethodPost:
		if k == KindBlobUpload {
			return ActionPush, nil
		}
	case http.MethodPatch:
		if k == KindBlobUpload {
			return ActionPush, nil
		}
	}
	return "", fmt.Errorf("method %s is not allowed on %s", method, k)
}
