package store

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regward/regward/internal/policy"
)

func TestCatalogEncoding(t *testing.T) {
	tests := []struct {
		name string
		in   policy.Catalog
		want policy.Catalog
	}{
		{"nil lists", policy.Catalog{}, policy.Catalog{VerifiedPublishers: []string{}, SponsoredOSS: []string{}}},
		{"empty lists", policy.Catalog{VerifiedPublishers: []string{}, SponsoredOSS: []string{}},
			policy.Catalog{VerifiedPublishers: []string{}, SponsoredOSS: []string{}}},
		{"full", policy.Catalog{VerifiedPublishers: []string{"bitnami"}, SponsoredOSS: []string{"grafana", "jenkins"}},
			policy.Catalog{VerifiedPublishers: []string{"bitnami"}, SponsoredOSS: []string{"grafana", "jenkins"}}},
	}
	for _, tc := range tests {
		data, err := EncodeCatalog(tc.in)
		if err != nil {
			t.Fatalf("%s: EncodeCatalog: %v", tc.name, err)
		}
		got, err := DecodeCatalog(data)
		if err != nil {
			t.Fatalf("%s: DecodeCatalog(%s): %v", tc.name, data, err)
		}
		// cmp tells a nil list from an empty one: API responses must show [].
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: round trip (-want +got):\n%s", tc.name, diff)
		}
	}
	if _, err := DecodeCatalog([]byte(`{`)); err == nil {
		t.Error("DecodeCatalog of broken JSON succeeded")
	}
	if diff := cmp.Diff(policy.Catalog{VerifiedPublishers: []string{}, SponsoredOSS: []string{}}, EmptyCatalog()); diff != "" {
		t.Errorf("EmptyCatalog (-want +got):\n%s", diff)
	}
}

func TestPolicyEncoding(t *testing.T) {
	p := policy.Policy{Org: "acme"}
	data, err := EncodePolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePolicy(data)
	if err != nil {
		t.Fatalf("DecodePolicy(%s): %v", data, err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := DecodePolicy([]byte(`{`)); err == nil {
		t.Error("DecodePolicy of broken JSON succeeded")
	}
}
