package ociref

import (
	"strings"
	"testing"
)

const dgst = "sha256:" + sha

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		want         Route
	}{
		{"GET", "/v2/", Route{Kind: KindBase}},
		{"GET", "/v2", Route{Kind: KindBase}},
		{"GET", "/v2/_catalog", Route{Kind: KindCatalog}},
		{"GET", "/v2/library/alpine/manifests/latest", Route{Kind: KindManifest, Name: "library/alpine", Reference: "latest", Action: ActionPull}},
		{"HEAD", "/v2/library/alpine/manifests/" + dgst, Route{Kind: KindManifest, Name: "library/alpine", Reference: dgst, Action: ActionPull}},
		{"PUT", "/v2/acme/app/manifests/v1", Route{Kind: KindManifest, Name: "acme/app", Reference: "v1", Action: ActionPush}},
		{"DELETE", "/v2/acme/app/manifests/" + dgst, Route{Kind: KindManifest, Name: "acme/app", Reference: dgst, Action: ActionDelete}},
		{"GET", "/v2/a/b/c/blobs/" + dgst, Route{Kind: KindBlob, Name: "a/b/c", Digest: dgst, Action: ActionPull}},
		{"POST", "/v2/acme/app/blobs/uploads/", Route{Kind: KindBlobUpload, Name: "acme/app", Action: ActionPush}},
		{"PATCH", "/v2/acme/app/blobs/uploads/3f2a-11=~x", Route{Kind: KindBlobUpload, Name: "acme/app", Upload: "3f2a-11=~x", Action: ActionPush}},
		{"PUT", "/v2/acme/app/blobs/uploads/abc", Route{Kind: KindBlobUpload, Name: "acme/app", Upload: "abc", Action: ActionPush}},
		{"GET", "/v2/acme/app/tags/list", Route{Kind: KindTags, Name: "acme/app", Action: ActionPull}},
		{"GET", "/v2/acme/app/referrers/" + dgst, Route{Kind: KindReferrers, Name: "acme/app", Digest: dgst, Action: ActionPull}},
		// Names may contain endpoint words as components.
		{"GET", "/v2/blobs/manifests/manifests/x", Route{Kind: KindManifest, Name: "blobs/manifests", Reference: "x", Action: ActionPull}},
		{"GET", "/v2/a-b__c.d/e--f/manifests/1.0", Route{Kind: KindManifest, Name: "a-b__c.d/e--f", Reference: "1.0", Action: ActionPull}},
	} {
		got, err := ParsePath(tc.method, tc.path)
		if err != nil {
			t.Errorf("ParsePath(%s %s): %v", tc.method, tc.path, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParsePath(%s %s) = %+v, want %+v", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestParsePathRefuses(t *testing.T) {
	for _, tc := range []struct{ method, path string }{
		{"GET", "/"},
		{"GET", "/v1/library/alpine/manifests/latest"},
		{"GET", "/v2//alpine/manifests/latest"},
		{"GET", "/v2/library/../alpine/manifests/latest"},
		{"GET", "/v2/library%2falpine/manifests/latest"},
		{"GET", "/v2/Library/alpine/manifests/latest"},
		{"GET", "/v2/library/alpine/manifests/"},
		{"GET", "/v2/library/alpine/manifests/-bad"},
		{"GET", "/v2/library/alpine/blobs/sha256"},
		{"GET", "/v2/library/alpine/blobs/notadigest"},
		{"GET", "/v2/library/alpine/referrers/latest"},
		{"GET", "/v2/library/alpine/unknown/x"},
		{"GET", "/v2/manifests/latest"},
		{"GET", "/v2/a_/b/manifests/x"},
		{"GET", "/v2/a\\b/manifests/x"},
		{"POST", "/v2/acme/app/manifests/v1"},
		{"DELETE", "/v2/acme/app/tags/list"},
		{"PUT", "/v2/acme/app/blobs/" + dgst},
		{"POST", "/v2/"},
		{"GET", "/v2/" + strings.Repeat("a/", 130) + "manifests/x"},
	} {
		if r, err := ParsePath(tc.method, tc.path); err == nil {
			t.Errorf("ParsePath(%s %s) = %+v, want an error", tc.method, tc.path, r)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/library/alpine/manifests/latest", "/v2/a/blobs/uploads/x", "/v2/a/b/tags/list", "/v2/x/referrers/" + dgst, "/v2/_catalog"} {
		f.Add("GET", s)
		f.Add("PUT", s)
	}
	f.Fuzz(func(t *testing.T, method, path string) {
		r, err := ParsePath(method, path)
		if err != nil {
			return
		}
		if r.Kind != KindBase && r.Kind != KindCatalog {
			if r.Name == "" || strings.Contains(r.Name, "//") || strings.Contains(r.Name, "..") || r.Action == ActionNone {
				t.Fatalf("ParsePath(%q, %q) = %+v", method, path, r)
			}
			if !strings.HasPrefix(path, "/v2/"+r.Name+"/") {
				t.Fatalf("name %q is not the path's prefix in %q", r.Name, path)
			}
		}
	})
}
