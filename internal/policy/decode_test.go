package policy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const exampleYAML = `# the example of DESIGN.md
org: acme
registryAccess:
  enabled: true
  registries:
    - host: docker-hub
    - host: ghcr.io
    - host: "*.dkr.ecr.eu-west-1.amazonaws.com"
    - host: registry.corp.example:5000
      access: pull
      description: internal mirror
imageAccess:
  enabled: true
  officialImages: allowed
  verifiedPublisherImages: allowed
  sponsoredOSSImages: restricted
  communityImages: restricted
  orgNamespaces: [acme]
  repositoryAllowlist:
    - bitnami/redis
namespaceAccess:
  pushOnlyToOrgNamespaces: true
`

func examplePolicy() Policy {
	return Policy{
		Org: "acme",
		RegistryAccess: RegistryAccess{
			Enabled: true,
			Registries: []Registry{
				{Host: "docker-hub"},
				{Host: "ghcr.io"},
				{Host: "*.dkr.ecr.eu-west-1.amazonaws.com"},
				{Host: "registry.corp.example:5000", Access: AccessPull, Description: "internal mirror"},
			},
		},
		ImageAccess: ImageAccess{
			Enabled:                 true,
			OfficialImages:          Allowed,
			VerifiedPublisherImages: Allowed,
			SponsoredOSSImages:      Restricted,
			CommunityImages:         Restricted,
			OrgNamespaces:           []string{"acme"},
			RepositoryAllowlist:     []string{"bitnami/redis"},
		},
		NamespaceAccess: NamespaceAccess{PushOnlyToOrgNamespaces: true},
	}
}

func TestDecodeExample(t *testing.T) {
	got, err := Decode([]byte(exampleYAML))
	if err != nil {
		t.Fatalf("Decode(example YAML): %v", err)
	}
	if diff := cmp.Diff(examplePolicy(), got); diff != "" {
		t.Errorf("Decode(example YAML) mismatch (-want +got):\n%s", diff)
	}
	js, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := Decode(js)
	if err != nil {
		t.Fatalf("Decode(JSON of example): %v", err)
	}
	if diff := cmp.Diff(got, fromJSON); diff != "" {
		t.Errorf("JSON and YAML decode differently (-yaml +json):\n%s", diff)
	}
	if err := got.Validate(Limits{}); err != nil {
		t.Errorf("the DESIGN.md example does not validate: %v", err)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	nilLists := Default("acme")
	nilLists.RegistryAccess.Registries = nil
	nilLists.ImageAccess.OrgNamespaces = nil
	nilLists.ImageAccess.RepositoryAllowlist = nil
	for name, p := range map[string]Policy{
		"example":   examplePolicy(),
		"default":   Default("acme"),
		"nil lists": nilLists,
		"no org":    Default(""),
	} {
		js, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(js)
		if err != nil {
			t.Fatalf("%s: Decode(%s): %v", name, js, err)
		}
		if diff := cmp.Diff(p, got); diff != "" {
			t.Errorf("%s: Decode(json.Marshal(p)) != p (-want +got):\n%s", name, diff)
		}
	}
}

func TestDecodeOptionalParts(t *testing.T) {
	doc := `{"registryAccess":{"enabled":false},
		"imageAccess":{"enabled":false,"officialImages":"allowed","verifiedPublisherImages":"allowed",
		"sponsoredOSSImages":"allowed","communityImages":"allowed"}}`
	got, err := Decode([]byte(doc))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := Default("")
	want.RegistryAccess = RegistryAccess{Enabled: false, Registries: []Registry{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("omitted org, lists and namespaceAccess (-want +got):\n%s", diff)
	}
	if got.RegistryAccess.Registries == nil || got.ImageAccess.OrgNamespaces == nil {
		t.Error("omitted lists must decode as empty, not nil, so the API shows []")
	}
}

// fieldErrors returns the FieldErrors in err, failing if it is not a
// *ValidationError.
func fieldErrors(t *testing.T, err error) []FieldError {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	return ve.Errors
}

const validImageAccess = `"imageAccess":{"enabled":false,"officialImages":"allowed","verifiedPublisherImages":"allowed","sponsoredOSSImages":"allowed","communityImages":"allowed"}`

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []FieldError
	}{
		{
			name: "unknown fields at every level",
			doc: `{"org":"acme","registryAccess":{"enabled":true,"extra":1,"registries":[{"host":"ghcr.io","acess":"pull"}]},` +
				validImageAccess + `,"namespaceAccess":{"pushOnlyToOrgNamespaces":false,"x":true},"version":3}`,
			want: []FieldError{
				{"registryAccess.extra", "unknown field"},
				{"registryAccess.registries[0].acess", "unknown field"},
				{"namespaceAccess.x", "unknown field"},
				{"version", "unknown field"},
			},
		},
		{
			name: "wrong types",
			doc: `{"org":7,"registryAccess":{"enabled":"true","registries":{"host":"ghcr.io"}},` +
				`"imageAccess":{"enabled":1,"officialImages":true,"verifiedPublisherImages":"allowed","sponsoredOSSImages":"allowed","communityImages":"allowed","orgNamespaces":"acme","repositoryAllowlist":[1]},` +
				`"namespaceAccess":[]}`,
			want: []FieldError{
				{"org", "must be a string, not a number"},
				{"registryAccess.enabled", "must be true or false, not a string"},
				{"registryAccess.registries", "must be a list, not an object"},
				{"imageAccess.enabled", "must be true or false, not a number"},
				{"imageAccess.officialImages", "must be a string, not a boolean"},
				{"imageAccess.orgNamespaces", "must be a list, not a string"},
				{"imageAccess.repositoryAllowlist[0]", "must be a string, not a number"},
				{"namespaceAccess", "must be an object, not a list"},
			},
		},
		{
			name: "missing sections",
			doc:  `{"org":"acme"}`,
			want: []FieldError{
				{"registryAccess", "required"},
				{"imageAccess", "required"},
			},
		},
		{
			name: "missing switches and restrictions",
			doc:  `{"registryAccess":{"registries":[{"access":"pull"}]},"imageAccess":{"officialImages":"allowed"},"namespaceAccess":{}}`,
			want: []FieldError{
				{"registryAccess.registries[0].host", "required"},
				{"registryAccess.enabled", "required"},
				{"imageAccess.enabled", "required"},
				{"imageAccess.verifiedPublisherImages", "required"},
				{"imageAccess.sponsoredOSSImages", "required"},
				{"imageAccess.communityImages", "required"},
				{"namespaceAccess.pushOnlyToOrgNamespaces", "required"},
			},
		},
		{
			name: "null where a value is needed",
			doc:  `{"org":null,"registryAccess":null,` + validImageAccess + `}`,
			want: []FieldError{
				{"org", "must be a string, not null"},
				{"registryAccess", "must be an object, not null"},
			},
		},
		{
			name: "YAML types",
			doc: "registryAccess:\n  enabled: yes\n  registries: [{host: 5000}]\nimageAccess:\n  enabled: false\n" +
				"  officialImages: allowed\n  verifiedPublisherImages: allowed\n  sponsoredOSSImages: allowed\n  communityImages: !!binary aGVsbG8=\n",
			want: []FieldError{
				{"registryAccess.enabled", "must be true or false, not a string"},
				{"registryAccess.registries[0].host", "must be a string, not a number"},
				{"imageAccess.communityImages", "must be a string, not a value of another type"},
			},
		},
		{name: "empty", doc: " \n\t", want: []FieldError{{"", "empty policy document"}}},
		{name: "not an object", doc: `- a`, want: []FieldError{{"", "the document must be an object, not a list"}}},
		{name: "JSON array", doc: `["a"]`, want: []FieldError{{"", "the document must be an object, not a list"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.doc))
			if err == nil {
				t.Fatal("Decode succeeded, want errors")
			}
			if diff := cmp.Diff(tt.want, fieldErrors(t, err)); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeSyntaxErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"JSON duplicate key", `{"org":"a","org":"b"}`, `duplicate key "org"`},
		{"YAML duplicate key", "org: a\norg: b\n", `duplicate key "org"`},
		{"JSON trailing data", `{"org":"a"} {}`, "unexpected data after the top-level object"},
		{"JSON syntax", `{"org":}`, "invalid JSON"},
		{"YAML syntax", "org: [a\n", "invalid YAML"},
		{"two YAML documents", "org: a\n---\norg: b\n", "more than one document"},
		{"YAML alias", "org: &x a\nregistryAccess: *x\n", "anchors and aliases are not supported"},
		{"YAML merge key", "x: &b {enabled: true}\nregistryAccess:\n  <<: *b\n", "anchors and aliases"},
		{"YAML non-string key", "1: a\n", "keys must be strings"},
		{"invalid UTF-8", "org: \xff\n", "not valid UTF-8"},
		{"deep nesting", strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100), "nested too deeply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want it to contain %q", err, tt.want)
			}
			fieldErrors(t, err) // syntax errors are ValidationErrors too, for one API path
		})
	}
}

func TestDecodeBOMAndYAMLBooleans(t *testing.T) {
	doc := "\xef\xbb\xbfregistryAccess: {enabled: True}\nimageAccess: {enabled: FALSE, officialImages: allowed, " +
		"verifiedPublisherImages: allowed, sponsoredOSSImages: allowed, communityImages: restricted}\n"
	p, err := Decode([]byte(doc))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !p.RegistryAccess.Enabled || p.ImageAccess.Enabled || p.ImageAccess.CommunityImages != Restricted {
		t.Errorf("decoded %+v", p)
	}
}

func TestDecodeSections(t *testing.T) {
	ra, err := DecodeRegistryAccess([]byte(`{"enabled":true,"registries":[{"host":"ghcr.io","access":"pull"}]}`))
	if err != nil {
		t.Fatalf("DecodeRegistryAccess: %v", err)
	}
	wantRA := RegistryAccess{Enabled: true, Registries: []Registry{{Host: "ghcr.io", Access: AccessPull}}}
	if diff := cmp.Diff(wantRA, ra); diff != "" {
		t.Errorf("DecodeRegistryAccess (-want +got):\n%s", diff)
	}

	_, err = DecodeRegistryAccess([]byte(`{"registries":[{"host":1}],"x":1}`))
	wantErrs := []FieldError{
		{"registryAccess.registries[0].host", "must be a string, not a number"},
		{"registryAccess.x", "unknown field"},
		{"registryAccess.enabled", "required"},
	}
	if diff := cmp.Diff(wantErrs, fieldErrors(t, err)); diff != "" {
		t.Errorf("DecodeRegistryAccess errors (-want +got):\n%s", diff)
	}

	ia, err := DecodeImageAccess([]byte("enabled: true\nofficialImages: allowed\nverifiedPublisherImages: allowed\n" +
		"sponsoredOSSImages: restricted\ncommunityImages: restricted\norgNamespaces: [acme]\n"))
	if err != nil {
		t.Fatalf("DecodeImageAccess: %v", err)
	}
	wantIA := ImageAccess{Enabled: true, OfficialImages: Allowed, VerifiedPublisherImages: Allowed,
		SponsoredOSSImages: Restricted, CommunityImages: Restricted, OrgNamespaces: []string{"acme"}, RepositoryAllowlist: []string{}}
	if diff := cmp.Diff(wantIA, ia); diff != "" {
		t.Errorf("DecodeImageAccess (-want +got):\n%s", diff)
	}

	_, err = DecodeImageAccess([]byte(`{"enabled":true}`))
	if got := fieldErrors(t, err); len(got) != 4 || got[0].Field != "imageAccess.officialImages" {
		t.Errorf("DecodeImageAccess missing restrictions: %v", got)
	}
	_, err = DecodeImageAccess([]byte(`[]`))
	if got := fieldErrors(t, err); len(got) != 1 || got[0] != (FieldError{"imageAccess", "must be an object, not a list"}) {
		t.Errorf("DecodeImageAccess of a list: %v", got)
	}
	_, err = DecodeImageAccess([]byte(`{`))
	if got := fieldErrors(t, err); len(got) != 1 || got[0].Field != "imageAccess" {
		t.Errorf("DecodeImageAccess syntax error: %v", got)
	}
}

// FuzzDecode checks that the decoder never panics and that whatever it
// accepts survives encode and decode unchanged.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(exampleYAML))
	if js, err := json.Marshal(examplePolicy()); err == nil {
		f.Add(js)
	}
	if js, err := json.Marshal(Default("acme")); err == nil {
		f.Add(js)
	}
	f.Add([]byte(`{"registryAccess":{"enabled":true,"registries":null},` + validImageAccess + `}`))
	f.Add([]byte("org: &a x\n"))
	f.Add([]byte("registryAccess: {enabled: true, registries: [{host: \"*.example.com\"}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) == 0 {
				t.Fatalf("Decode error %v is not a non-empty *ValidationError", err)
			}
			return
		}
		_ = p.Validate(Limits{})
		js, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		p2, err := Decode(js)
		if err != nil {
			t.Fatalf("Decode(%s) after a successful decode: %v", js, err)
		}
		if diff := cmp.Diff(p, p2); diff != "" {
			t.Fatalf("decode-encode-decode changed the policy (-first +second):\n%s", diff)
		}
	})
}
