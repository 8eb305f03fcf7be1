package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseNamespaceList(t *testing.T) {
	data := "\xef\xbb\xbf# header\n\nbitnami\n  grafana  # trailing comment\r\nprom\n#last"
	got, err := ParseNamespaceList([]byte(data))
	if err != nil {
		t.Fatalf("ParseNamespaceList: %v", err)
	}
	if diff := cmp.Diff([]string{"bitnami", "grafana", "prom"}, got); diff != "" {
		t.Errorf("ParseNamespaceList (-want +got):\n%s", diff)
	}

	empty, err := ParseNamespaceList([]byte("# nothing\n\n"))
	if err != nil || empty == nil || len(empty) != 0 {
		t.Errorf("ParseNamespaceList of comments = %#v, %v; want an empty list", empty, err)
	}
	dups, err := ParseNamespaceList([]byte("a1\na1\n"))
	if err != nil || len(dups) != 2 {
		t.Errorf("duplicates must be kept so callers can count entries: %v, %v", dups, err)
	}

	for _, tt := range []struct{ data, want string }{
		{"ok\nBad\n", `line 2: "Bad" is not a Docker Hub namespace`},
		{"ok\n\n\ntwo words\n", `line 4: "two words": one namespace a line`},
		{"a/b", `line 1: "a/b" is not a Docker Hub namespace: a namespace is one name without "/"`},
		{"ok\nquay.io\n", `line 2: "quay.io" is not a Docker Hub namespace: docker reads it as a registry host`},
	} {
		_, err := ParseNamespaceList([]byte(tt.data))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("ParseNamespaceList(%q) error = %v, want prefix %q", tt.data, err, tt.want)
		}
	}
}

// TestShippedCatalog checks the data files shipped in catalog/ are well
// formed; other tests build their own Catalog and never rely on this data.
func TestShippedCatalog(t *testing.T) {
	c := DefaultCatalog()
	if len(c.VerifiedPublishers) == 0 || len(c.SponsoredOSS) == 0 {
		t.Fatalf("shipped catalog is empty: %+v", c)
	}
	seen := map[string]string{}
	for list, names := range map[string][]string{"verified-publishers": c.VerifiedPublishers, "sponsored-oss": c.SponsoredOSS} {
		for _, ns := range names {
			if ns == "library" {
				t.Errorf("%s lists library, which is the official images' namespace", list)
			}
			if other, dup := seen[ns]; dup {
				t.Errorf("%q is listed twice (%s and %s)", ns, other, list)
			}
			seen[ns] = list
		}
	}
	c.VerifiedPublishers[0] = "changed"
	if DefaultCatalog().VerifiedPublishers[0] == "changed" {
		t.Error("DefaultCatalog returned shared slices")
	}
	if _, err := Compile(Default("acme"), DefaultCatalog()); err != nil {
		t.Errorf("Compile with the shipped catalog: %v", err)
	}
}
