package ociref

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

const (
	dgst    = "sha256:" + sha
	dgst512 = "sha512:" + sha + sha
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         Route
	}{
		{"GET", "/v2/", Route{Kind: KindBase}},
		{"HEAD", "/v2/", Route{Kind: KindBase}},
		{"GET", "/v2", Route{Kind: KindBase}},
		{"GET", "/v2/_catalog", Route{Kind: KindCatalog}},
		{"GET", "/v2/library/alpine/manifests/latest", Route{Kind: KindManifest, Name: "library/alpine", Reference: "latest", Action: ActionPull}},
		{"HEAD", "/v2/library/alpine/manifests/" + dgst, Route{Kind: KindManifest, Name: "library/alpine", Reference: dgst, Action: ActionPull}},
		{"GET", "/v2/alpine/manifests/" + dgst512, Route{Kind: KindManifest, Name: "alpine", Reference: dgst512, Action: ActionPull}},
		{"PUT", "/v2/acme/app/manifests/v1", Route{Kind: KindManifest, Name: "acme/app", Reference: "v1", Action: ActionPush}},
		{"PUT", "/v2/acme/app/manifests/" + dgst, Route{Kind: KindManifest, Name: "acme/app", Reference: dgst, Action: ActionPush}},
		{"DELETE", "/v2/acme/app/manifests/" + dgst, Route{Kind: KindManifest, Name: "acme/app", Reference: dgst, Action: ActionDelete}},
		{"GET", "/v2/a/b/c/blobs/" + dgst, Route{Kind: KindBlob, Name: "a/b/c", Digest: dgst, Action: ActionPull}},
		{"HEAD", "/v2/a/blobs/" + dgst, Route{Kind: KindBlob, Name: "a", Digest: dgst, Action: ActionPull}},
		{"DELETE", "/v2/a/blobs/" + dgst, Route{Kind: KindBlob, Name: "a", Digest: dgst, Action: ActionDelete}},
		// An algorithm the spec does not register passes on the grammar.
		{"GET", "/v2/a/blobs/blake3+x.y:QUJD-_=", Route{Kind: KindBlob, Name: "a", Digest: "blake3+x.y:QUJD-_=", Action: ActionPull}},
		{"POST", "/v2/acme/app/blobs/uploads/", Route{Kind: KindBlobUpload, Name: "acme/app", Action: ActionPush}},
		{"PATCH", "/v2/acme/app/blobs/uploads/3f2a-11=~x", Route{Kind: KindBlobUpload, Name: "acme/app", Upload: "3f2a-11=~x", Action: ActionPush}},
		{"PUT", "/v2/acme/app/blobs/uploads/abc", Route{Kind: KindBlobUpload, Name: "acme/app", Upload: "abc", Action: ActionPush}},
		{"GET", "/v2/acme/app/blobs/uploads/abc", Route{Kind: KindBlobUpload, Name: "acme/app", Upload: "abc", Action: ActionPush}},
		{"DELETE", "/v2/acme/app/blobs/uploads/a.b", Route{Kind: KindBlobUpload, Name: "acme/app", Upload: "a.b", Action: ActionPush}},
		{"GET", "/v2/acme/app/tags/list", Route{Kind: KindTags, Name: "acme/app", Action: ActionPull}},
		{"GET", "/v2/acme/app/referrers/" + dgst, Route{Kind: KindReferrers, Name: "acme/app", Digest: dgst, Action: ActionPull}},
		// Names may contain endpoint words as components; the endpoint is
		// read from the right.
		{"GET", "/v2/blobs/manifests/manifests/x", Route{Kind: KindManifest, Name: "blobs/manifests", Reference: "x", Action: ActionPull}},
		{"GET", "/v2/a/blobs/uploads/manifests/x", Route{Kind: KindManifest, Name: "a/blobs/uploads", Reference: "x", Action: ActionPull}},
		{"GET", "/v2/tags/list/tags/list", Route{Kind: KindTags, Name: "tags/list", Action: ActionPull}},
		{"GET", "/v2/a-b__c.d/e--f/manifests/1.0", Route{Kind: KindManifest, Name: "a-b__c.d/e--f", Reference: "1.0", Action: ActionPull}},
		{"GET", "/v2/a/manifests/_x." + strings.Repeat("t", 125), Route{Kind: KindManifest, Name: "a", Reference: "_x." + strings.Repeat("t", 125), Action: ActionPull}},
		{"GET", "/v2/" + strings.Repeat("a", 255) + "/tags/list", Route{Kind: KindTags, Name: strings.Repeat("a", 255), Action: ActionPull}},
	} {
		got, err := ParsePath(tc.method, tc.path)
		if err != nil {
			t.Errorf("ParsePath(%s %s): %v", tc.method, tc.path, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParsePath(%s %s) = %+v, want %+v", tc.method, tc.path, got, tc.want)
		}
		if p := got.Path(); p != tc.path && !(tc.path == "/v2" && p == "/v2/") {
			t.Errorf("ParsePath(%s %s).Path() = %q", tc.method, tc.path, p)
		}
	}
}

func TestParsePathRefuses(t *testing.T) {
	for _, tc := range []struct{ method, path, why string }{
		{"GET", "/v2//alpine/manifests/latest", "empty path segments"},
		{"GET", "/v2/library//alpine/manifests/latest", "empty path segments"},
		{"GET", "/v2/library/../alpine/manifests/latest", `".." is not a valid repository name component`},
		{"GET", "/v2/./alpine/manifests/latest", `"." is not a valid repository name component`},
		{"GET", "/v2/library%2falpine/manifests/latest", "escaped characters"},
		{"GET", "/v2/library/alpine/manifests/%6catest", "escaped characters"},
		{"GET", "/v2/a\\b/manifests/x", "backslashes"},
		{"GET", "/v2/a/manifests/x?y", "queries"},
		{"GET", "/v2/a/manifests/x#y", "fragments"},
		{"GET", "/v2/Library/alpine/manifests/latest", `"Library" is not a valid repository name component`},
		{"GET", "/v2/a_/b/manifests/x", `"a_" is not a valid`},
		{"GET", "/v2/a___b/manifests/x", `"a___b" is not a valid`},
		{"GET", "/v2/-a/manifests/x", `"-a" is not a valid`},
		{"GET", "/v2/a b/manifests/x", `"a b" is not a valid`},
		{"GET", "/v2/a\r\nb/manifests/x", "is not a valid repository name component"},
		{"GET", "/v2/a\x00/manifests/x", "is not a valid repository name component"},
		{"GET", "/v2/café/manifests/x", "is not a valid repository name component"},
		{"GET", "/v2/" + strings.Repeat("a/", 129) + "manifests/x", "257 characters, the limit is 255"},
		{"GET", "/v2/" + strings.Repeat("a", 256) + "/tags/list", "256 characters, the limit is 255"},
		{"GET", "/v2/manifests/latest", "no repository name"},
		{"GET", "/v2/tags/list", "no repository name"},
		{"POST", "/v2/blobs/uploads/", "no repository name"},
		{"GET", "/v2/library/alpine/manifests/", "neither a tag nor a digest"},
		{"GET", "/v2/library/alpine/manifests/-bad", "neither a tag nor a digest"},
		{"GET", "/v2/library/alpine/manifests/.bad", "neither a tag nor a digest"},
		{"GET", "/v2/library/alpine/manifests/" + strings.Repeat("t", 129), "neither a tag nor a digest"},
		{"GET", "/v2/library/alpine/manifests/sha256:abc", "want 64 lowercase hex characters"},
		{"GET", "/v2/library/alpine/manifests/latest/", "not a distribution API endpoint"},
		{"GET", "/v2/library/alpine/blobs/sha256", "is not a digest"},
		{"GET", "/v2/library/alpine/blobs/notadigest", "is not a digest"},
		{"GET", "/v2/library/alpine/blobs/sha256:" + strings.ToUpper(sha), "want 64 lowercase hex"},
		{"GET", "/v2/library/alpine/blobs/sha256:" + sha + "0", "want 64 lowercase hex"},
		{"GET", "/v2/library/alpine/blobs/sha512:" + sha, "want 128 lowercase hex"},
		{"GET", "/v2/library/alpine/blobs/SHA256:" + sha, "is not a digest"},
		{"GET", "/v2/library/alpine/blobs/", "is not a digest"},
		{"GET", "/v2/library/alpine/referrers/latest", "is not a digest"},
		{"GET", "/v2/library/alpine/unknown/x", "not a distribution API endpoint"},
		{"GET", "/v2/library/alpine/tags/list/", "not a distribution API endpoint"},
		{"GET", "/v2/library/alpine/tags", "not a distribution API endpoint"},
		{"GET", "/v2/library/alpine", "not a distribution API endpoint"},
		{"GET", "/v2/_catalog/", "not a distribution API endpoint"},
		{"PATCH", "/v2/a/blobs/uploads/..", `".." is not a valid upload ID`},
		{"PATCH", "/v2/a/blobs/uploads/.", `"." is not a valid upload ID`},
		{"PATCH", "/v2/a/blobs/uploads/a:b", "is not a valid upload ID"},
		{"PATCH", "/v2/a/blobs/uploads/" + strings.Repeat("u", 257), "is not a valid upload ID"},
		{"POST", "/v2/a/blobs/uploads/abc", "takes no upload ID"},
		{"GET", "/v2/a/blobs/uploads/", "needs an upload ID"},
		{"PUT", "/v2/a/blobs/uploads/", "needs an upload ID"},
		{"PATCH", "/v2/a/blobs/uploads/", "needs an upload ID"},
		{"DELETE", "/v2/a/blobs/uploads/", "needs an upload ID"},
		{"OPTIONS", "/v2/a/blobs/uploads/abc", "method OPTIONS is not allowed on blob-upload"},
		{"POST", "/v2/acme/app/manifests/v1", "method POST is not allowed on manifest"},
		{"PATCH", "/v2/acme/app/manifests/v1", "method PATCH is not allowed on manifest"},
		{"get", "/v2/acme/app/manifests/v1", "method get is not allowed"},
		{"DELETE", "/v2/acme/app/tags/list", "method DELETE is not allowed on tags"},
		{"DELETE", "/v2/acme/app/referrers/" + dgst, "method DELETE is not allowed on referrers"},
		{"PUT", "/v2/acme/app/blobs/" + dgst, "method PUT is not allowed on blob"},
		{"POST", "/v2/acme/app/blobs/" + dgst, "method POST is not allowed on blob"},
		{"POST", "/v2/", "method POST is not allowed"},
		{"DELETE", "/v2/_catalog", "method DELETE is not allowed"},
	} {
		r, err := ParsePath(tc.method, tc.path)
		if err == nil {
			t.Errorf("ParsePath(%s %q) = %+v, want an error (%s)", tc.method, tc.path, r, tc.why)
			continue
		}
		if r != (Route{}) {
			t.Errorf("ParsePath(%s %q) returned %+v with its error, want the zero Route", tc.method, tc.path, r)
		}
		if !strings.Contains(err.Error(), tc.why) {
			t.Errorf("ParsePath(%s %q) error = %q, want it to say %q", tc.method, tc.path, err, tc.why)
		}
		if !strings.Contains(err.Error(), tc.method) {
			t.Errorf("ParsePath(%s %q) error = %q does not name the request", tc.method, tc.path, err)
		}
	}
}

func TestParsePathNotDistribution(t *testing.T) {
	for _, p := range []string{"", "/", "v2/", "/v1/library/alpine/manifests/latest", "/V2/", "/v2x", "/v20/a/tags/list", "http://r/v2/"} {
		if _, err := ParsePath(http.MethodGet, p); !errors.Is(err, ErrNotDistribution) {
			t.Errorf("ParsePath(GET %q) error = %v, want ErrNotDistribution", p, err)
		}
	}
}

func TestParseMount(t *testing.T) {
	start := Route{Kind: KindBlobUpload, Name: "acme/app", Action: ActionPush}
	for _, tc := range []struct {
		name  string
		route Route
		query string
		want  Mount
		ok    bool
	}{
		{"mount with source", start, "mount=" + dgst + "&from=library%2Fnginx", Mount{Digest: dgst, From: "library/nginx"}, true},
		{"mount, registry picks source", start, "mount=" + dgst, Mount{Digest: dgst}, true},
		{"plain upload", start, "", Mount{}, false},
		{"monolithic upload", start, "digest=" + dgst, Mount{}, false},
		{"from alone is ignored", start, "from=a/b", Mount{}, false},
		{"not an upload start", Route{Kind: KindBlobUpload, Name: "a", Upload: "x", Action: ActionPush}, "mount=" + dgst + "&from=b", Mount{}, false},
		{"not an upload", Route{Kind: KindBlob, Name: "a", Digest: dgst, Action: ActionPull}, "mount=" + dgst + "&from=b", Mount{}, false},
	} {
		m, ok, err := ParseMount(tc.route, tc.query)
		if err != nil || ok != tc.ok || m != tc.want {
			t.Errorf("%s: ParseMount(%q) = %+v, %v, %v; want %+v, %v, nil", tc.name, tc.query, m, ok, err, tc.want, tc.ok)
		}
	}
}

func TestParseMountRefuses(t *testing.T) {
	start := Route{Kind: KindBlobUpload, Name: "acme/app", Action: ActionPush}
	for _, tc := range []struct{ query, why string }{
		{"mount=" + dgst + "&from=a&from=b", `"from" is given 2 times`},
		{"mount=" + dgst + "&mount=" + dgst + "&from=a", `"mount" is given 2 times`},
		{"mount=sha256:abc&from=a", "want 64 lowercase hex"},
		{"mount=&from=a", "is not a digest"},
		{"mount=" + dgst + "&from=", "empty repository name"},
		{"mount=" + dgst + "&from=A/b", `"A" is not a valid repository name component`},
		{"mount=" + dgst + "&from=a/../b", `".." is not a valid`},
		{"mount=" + dgst + "&from=a%2F%2Fb", `"" is not a valid`},
		{"mount=" + dgst + "&from=" + strings.Repeat("a", 256), "the limit is 255"},
		{"mount=" + dgst + "&from=a%zz", "invalid URL escape"},
		{"mount=" + dgst + ";from=a", "invalid semicolon"},
	} {
		m, ok, err := ParseMount(start, tc.query)
		if err == nil {
			t.Errorf("ParseMount(%q) = %+v, %v, want an error (%s)", tc.query, m, ok, tc.why)
			continue
		}
		if ok || m != (Mount{}) {
			t.Errorf("ParseMount(%q) returned %+v, %v with its error", tc.query, m, ok)
		}
		if !strings.Contains(err.Error(), tc.why) {
			t.Errorf("ParseMount(%q) error = %q, want it to say %q", tc.query, err, tc.why)
		}
	}
}

var fuzzMethods = []string{"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{
		"/v2/", "/v2", "/v2/_catalog", "/v2/library/alpine/manifests/latest", "/v2/a/manifests/" + dgst,
		"/v2/a/blobs/" + dgst, "/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/x", "/v2/a/blobs/uploads/..",
		"/v2/a/b/tags/list", "/v2/x/referrers/" + dgst, "/v2/a%2fb/tags/list", "/v2//a/tags/list",
		"/v2/blobs/manifests/manifests/x", "/v2/a/blobs/sha256:abc",
	} {
		for _, m := range fuzzMethods {
			f.Add(m, s)
		}
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		r, err := ParsePath(method, path)
		if err != nil {
			if r != (Route{}) {
				t.Fatalf("ParsePath(%q, %q) = %+v with error %v", method, path, r, err)
			}
			return
		}
		// Whatever was accepted renders back to the same path, so the
		// decision is about exactly what the registry will see.
		if p := r.Path(); p != path && !(path == "/v2" && p == "/v2/") {
			t.Fatalf("ParsePath(%q, %q) = %+v renders as %q", method, path, r, p)
		}
		if r2, err := ParsePath(method, r.Path()); err != nil || r2 != r {
			t.Fatalf("reparse of %q = %+v, %v; want %+v", r.Path(), r2, err, r)
		}
		switch r.Kind {
		case KindBase, KindCatalog:
			if r.Name != "" || r.Action != ActionNone {
				t.Fatalf("ParsePath(%q, %q) = %+v", method, path, r)
			}
			return
		}
		if err := checkName(r.Name); err != nil {
			t.Fatalf("ParsePath(%q, %q) accepted name %q: %v", method, path, r.Name, err)
		}
		for _, seg := range strings.Split(path, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("ParsePath(%q, %q) accepted a dot segment", method, path)
			}
		}
		want := map[string]Action{"GET": ActionPull, "HEAD": ActionPull, "DELETE": ActionDelete}[method]
		if r.Kind == KindBlobUpload || method == "PUT" || method == "POST" || method == "PATCH" {
			want = ActionPush
		}
		if r.Action != want {
			t.Fatalf("ParsePath(%q, %q) action %q, want %q", method, path, r.Action, want)
		}
	})
}
