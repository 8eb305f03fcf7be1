package ociref

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Mount is a cross-repository blob mount:
// POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repository>. It pushes
// to the route's repository but reads a blob of From, so a policy that
// restricts pulls has to judge From as a pull.
type Mount struct {
	Digest string
	From   string // empty when the client left the source to the registry
}

// ParseMount reads a cross-repository mount from the raw (still escaped)
// query of a request whose path parsed to r. ok is false when the request
// is not a mount: any route other than the POST that starts an upload, or
// a query without "mount". Parameters given twice are an error, because
// registries differ in which one they use.
func ParseMount(r Route, rawQuery string) (m Mount, ok bool, err error) {
	if r.Kind != KindBlobUpload || r.Upload != "" || r.Action != ActionPush {
		return Mount{}, false, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return Mount{}, false, fmt.Errorf("upload query %q: %w", rawQuery, err)
	}
	for _, k := range []string{"mount", "from"} {
		if len(q[k]) > 1 {
			return Mount{}, false, fmt.Errorf("upload query %q: %q is given %d times", rawQuery, k, len(q[k]))
		}
	}
	if !q.Has("mount") {
		return Mount{}, false, nil
	}
	m.Digest, m.From = q.Get("mount"), q.Get("from")
	if err := checkDigest(m.Digest); err != nil {
		return Mount{}, false, fmt.Errorf("upload query: mount: %w", err)
	}
	if q.Has("from") {
		if err := checkName(m.From); err != nil {
			return Mount{}, false, fmt.Errorf("upload query: from: %w", err)
		}
	}
	return m, true, nil
}

// checkName applies the repository name grammar to a whole name.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty repository name")
	}
	if len(name) > maxName {
		return fmt.Errorf("repository name is %d characters, the limit is %d", len(name), maxName)
	}
	for _, c := range strings.Split(name, "/") {
		if !componentRE.MatchString(c) {
			return fmt.Errorf("%q is not a valid repository name component (lowercase letters and digits, separated by '.', '_', '__' or '-')", c)
		}
	}
	return nil
}
