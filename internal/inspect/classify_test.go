package inspect

import (
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regward/regward/internal/ociref"
	"github.com/regward/regward/internal/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// classifyVectors seed the table test and the fuzzer. status 0: accepted.
var classifyVectors = []struct {
	method, target, authority string
	status                    int
	code                      string
	kind                      ociref.Kind
	action                    policy.Action
}{
	{"GET", "/v2/", "registry-1.docker.io", 0, "", ociref.KindBase, ""},
	{"GET", "/v2", "registry-1.docker.io", 0, "", ociref.KindBase, ""},
	{"GET", "/v2/_catalog?n=10", "registry-1.docker.io:443", 0, "", ociref.KindCatalog, ""},
	{"GET", "/v2/library/alpine/manifests/latest", "registry-1.docker.io", 0, "", ociref.KindManifest, policy.ActionPull},
	{"HEAD", "/v2/library/alpine/manifests/sha256:" + strings.Repeat("a", 64), "", 0, "", ociref.KindManifest, policy.ActionPull},
	{"GET", "/v2/library/alpine/blobs/sha256:" + strings.Repeat("b", 64), "registry-1.docker.io", 0, "", ociref.KindBlob, policy.ActionPull},
	{"PUT", "/v2/acme/app/manifests/v1", "registry-1.docker.io", 0, "", ociref.KindManifest, policy.ActionPush},
	{"DELETE", "/v2/acme/app/manifests/sha256:" + strings.Repeat("c", 64), "registry-1.docker.io", 0, "", ociref.KindManifest, policy.ActionDelete},
	{"POST", "/v2/acme/app/blobs/uploads/?mount=sha256:" + strings.Repeat("d", 64) + "&from=library/alpine", "registry-1.docker.io", 0, "", ociref.KindBlobUpload, policy.ActionPush},
	{"PATCH", "/v2/acme/app/blobs/uploads/0b6c-4e1a?_state=abc", "registry-1.docker.io", 0, "", ociref.KindBlobUpload, policy.ActionPush},
	{"GET", "/v2/a/b/c/tags/list", "registry-1.docker.io", 0, "", ociref.KindTags, policy.ActionPull},
	{"GET", "/token?scope=repository:someone/tool:pull", "registry-1.docker.io", 0, "", 0, ""},
	{"POST", "/service/token", "registry-1.docker.io", 0, "", 0, ""},
	{"DELETE", "/api/v2.0/projects/x", "registry-1.docker.io", 0, "", 0, policy.ActionPush},
	{"GET", "/", "registry-1.docker.io", 0, "", 0, ""},
	{"GET", "/v2x/someone/tool/manifests/latest", "registry-1.docker.io", 0, "", 0, ""},

	{"GET", "/v2/library/../someone/tool/manifests/latest", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "/v2/someone%2Ftool/manifests/latest", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "/v2/someone/tool/manifests/lat%65st", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "/v2//someone/tool/manifests/latest", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "/v2/Someone/tool/manifests/latest", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "/v2/someone/tool/blobs/sha256:abc", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "/v2/someone/tool/nothing/here", "", 400, "NAME_INVALID", 0, ""},
	{"POST", "/v2/library/alpine/manifests/latest", "", 400, "UNSUPPORTED", 0, ""},
	{"PATCH", "/v2/library/alpine/blobs/sha256:" + strings.Repeat("b", 64), "", 400, "UNSUPPORTED", 0, ""},
	{"POST", "/v2/acme/app/blobs/uploads/?mount=sha256:x", "", 400, "NAME_INVALID", 0, ""},
	{"POST", "/v2/acme/app/blobs/uploads/?mount=sha256:" + strings.Repeat("d", 64) + "&from=Someone/tool", "", 400, "NAME_INVALID", 0, ""},
	{"POST", "/v2/acme/app/blobs/uploads/?mount=a&mount=b", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "/%76%32/someone/tool/manifests/latest", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "/%2576%2532/someone/tool/manifests/latest", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "/v2;jsessionid=1/someone/tool/manifests/latest", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "/V2/someone/tool/manifests/latest", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "/x/../v2/someone/tool/manifests/latest", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "/./v2/someone/tool/manifests/latest", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "//v2/someone/tool/manifests/latest", "", 400, "NAME_INVALID", 0, ""},
	{"GET", "/\\v2/someone/tool/manifests/latest", "", 400, "NAME_INVALID", 0, ""},
	{"TRACE", "/", "", 405, "UNSUPPORTED", 0, ""},
	{"CONNECT", "/", "", 405, "UNSUPPORTED", 0, ""},
	{"GET", "/v2/", "evil.test", 421, "DENIED", 0, ""},
	{"GET", "/v2/", "registry-1.docker.io:8443", 421, "DENIED", 0, ""},
	{"GET", "/v2/", "registry-1.docker.io.", 0, "", ociref.KindBase, ""}, // one trailing dot is the same name
	{"GET", "/v2/", "REGISTRY-1.DOCKER.IO", 0, "", ociref.KindBase, ""},
	{"GET", "/v2/", "registry-1.docker.io@evil.test", 421, "DENIED", 0, ""},
	{"GET", "https://evil.test/v2/", "registry-1.docker.io", 421, "DENIED", 0, ""},
	{"GET", "http://registry-1.docker.io/v2/", "registry-1.docker.io", 421, "DENIED", 0, ""},
	{"GET", "https://registry-1.docker.io/v2/library/alpine/manifests/3", "registry-1.docker.io", 0, "", ociref.KindManifest, policy.ActionPull},
	{"GET", "*", "registry-1.docker.io", 400, "UNSUPPORTED", 0, ""},
}

func TestClassify(t *testing.T) {
	for _, v := range classifyVectors {
		u, err := url.ParseRequestURI(v.target)
		if err != nil {
			t.Fatalf("%s: %v", v.target, err)
		}
		rq, bad := classify(v.method, u, v.authority, "registry-1.docker.io", 443)
		switch {
		case v.status == 0 && bad != nil:
			t.Errorf("%s %s (Host %s) refused: %+v", v.method, v.target, v.authority, bad)
		case v.status != 0 && bad == nil:
			t.Errorf("%s %s (Host %s) accepted as %+v, want %d %s", v.method, v.target, v.authority, rq, v.status, v.code)
		case bad != nil && (bad.status != v.status || bad.code != v.code):
			t.Errorf("%s %s (Host %s): %d %s %q, want %d %s", v.method, v.target, v.authority, bad.status, bad.code, bad.message, v.status, v.code)
		case bad == nil && (rq.route.Kind != v.kind || rq.action != v.action):
			t.Errorf("%s %s: kind %v action %q, want %v %q", v.method, v.target, rq.route.Kind, rq.action, v.kind, v.action)
		}
	}
}

// TestClassifyThroughNetHTTP checks the vectors as net/http delivers them
// to a handler, which is where classify's input comes from.
func TestClassifyThroughNetHTTP(t *testing.T) {
	for _, v := range classifyVectors {
		if v.method == "CONNECT" || strings.ContainsAny(v.target, "\\") {
			continue // net/http answers or refuses these itself
		}
		r := httptest.NewRequest(v.method, v.target, nil)
		host := v.authority
		if host == "" {
			host = "registry-1.docker.io"
		}
		if r.URL.Host == "" {
			r.Host = host
		}
		_, bad := classify(r.Method, r.URL, r.Host, "registry-1.docker.io", 443)
		if (bad == nil) != (v.status == 0) || (bad != nil && bad.code != v.code) {
			t.Errorf("%s %s via net/http: %+v, want %d %s", v.method, v.target, bad, v.status, v.code)
		}
	}
}

func TestMayReachAPI(t *testing.T) {
	for p, want := range map[string]bool{
		"/":                    false,
		"/token":               false,
		"/v2x/a":               false,
		"/api/v2/a":            false,
		"/v3/":                 false,
		"/%762/":               true, // %76 is "v"
		"/v2;a/b":              true,
		"/V2/a":                true,
		"/%76%32/a":            true,
		"/a/../v2/b":           true,
		"/a/..;/v2/b":          true,
		"/../v2/b":             true,
		"/a%2f..%2fv2/b":       true,
		"/%252e%252e/v2/":      true,
		"/\\v2\\a":             true,
		"/ v2/a":               false,
		"/v2 /a":               true, // trailing blanks are dropped by some servers
		"/...../v2/a":          false,
		"/a/b/c/../../../v2/x": true,
	} {
		if got := mayReachAPI(p); got != want {
			t.Errorf("mayReachAPI(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestRedirectTarget(t *testing.T) {
	for _, tc := range []struct {
		loc  string
		host string
		port uint16
		ok   bool
	}{
		{"https://production.cloudflare.docker.com/registry-v2/docker/blobs/sha256/ab/x?verify=1", "production.cloudflare.docker.com", 443, true},
		{"https://bucket.s3.amazonaws.com:8443/x", "bucket.s3.amazonaws.com", 8443, true},
		{"http://cdn.example.com/x", "cdn.example.com", 80, true},
		{"HTTPS://CDN.Example.COM./x", "cdn.example.com", 443, true},
		{"//cdn.example.com/x", "cdn.example.com", 443, true},
		{"https://[2001:db8::1]/x", "2001:db8::1", 443, true},
		{"/v2/library/alpine/blobs/sha256:x", "", 0, false},
		{"x/y", "", 0, false},
		{"https://registry-1.docker.io/v2/x", "", 0, false},
		{"https://registry-1.docker.io:443/v2/x", "", 0, false},
		{"http://registry-1.docker.io/v2/x", "registry-1.docker.io", 80, true},
		{"https://registry-1.docker.io:5000/v2/x", "registry-1.docker.io", 5000, true},
		{"ftp://cdn.example.com/x", "", 0, false},
		{"https://cdn.example.com:0/x", "", 0, false},
		{"https://cdn.example.com:99999/x", "", 0, false},
		{"https://exa mple.com/", "", 0, false},
		{"https://user:pw@cdn.example.com/x", "cdn.example.com", 443, true},
		{"", "", 0, false},
		{"https://", "", 0, false},
		{"https://bad_host!/x", "", 0, false},
	} {
		h, p, ok := redirectTarget("registry-1.docker.io", 443, tc.loc)
		if h != tc.host || p != tc.port || ok != tc.ok {
			t.Errorf("redirectTarget(%q) = %q %d %v, want %q %d %v", tc.loc, h, p, ok, tc.host, tc.port, tc.ok)
		}
	}
}

func TestCheckServerName(t *testing.T) {
	for _, tc := range []struct {
		host, sni string
		port      uint16
		ok        bool
	}{
		{"registry-1.docker.io", "registry-1.docker.io", 443, true},
		{"registry-1.docker.io", "Registry-1.Docker.IO", 443, true},
		{"registry-1.docker.io", "registry-1.docker.io.", 443, true},
		{"registry-1.docker.io", "evil.test", 443, false},
		{"registry-1.docker.io", "", 443, false},
		{"registry-1.docker.io", "registry-1.docker.io.evil.test", 443, false},
		{"registry-1.docker.io", "bad name", 443, false},
		{"192.0.2.7", "", 5000, true},
		{"192.0.2.7", "192.0.2.7", 5000, true},
		{"192.0.2.7", "other.test", 5000, false},
	} {
		reason, ok := checkServerName(tc.host, tc.port, tc.sni)
		if ok != tc.ok || (ok == (reason != "")) {
			t.Errorf("checkServerName(%s, %q) = %q %v, want ok %v", tc.host, tc.sni, reason, ok, tc.ok)
		}
	}
}

func TestStripMount(t *testing.T) {
	for in, want := range map[string]string{
		"mount=sha256:x&from=a/b":          "",
		"mount=sha256:x&from=a/b&digest=y": "digest=y",
		"a=1&mount=x&b=2":                  "a=1&b=2",
		"%6Dount=x&from=y&c":               "c",
		"":                                 "",
		"&&mount=x&&":                      "",
		"mounted=1":                        "mounted=1",
	} {
		if got := stripMount(in); got != want {
			t.Errorf("stripMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"longer text", 6, "longer..."},
		{"añb", 2, "a..."}, // never half a rune
		{"日本", 4, "日..."},
	} {
		if got := clip(tc.in, tc.n); got != tc.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// TestErrorBodies pins the rendered error answers clients parse.
func TestErrorBodies(t *testing.T) {
	var b strings.Builder
	for _, tc := range []struct {
		status    int
		code, msg string
	}{
		{http.StatusForbidden, "DENIED", "image docker.io/someone/tool is a community image; organization acme allows only official images and its own namespaces (acme)"},
		{http.StatusForbidden, "DENIED", redirectReason("cdn.denied.test", "acme", "docker.io/library/alpine", "registry-1.docker.io")},
		{http.StatusForbidden, "DENIED", redirectReason("cdn.denied.test", "acme", "", "mirror.test")},
		{http.StatusBadRequest, "NAME_INVALID", `malformed registry request: GET "/v2/Someone/x/manifests/1": "Someone" is not valid <&>`},
		{http.StatusBadGateway, "UNAVAILABLE", "the gateway cannot connect to pull.test:5000: connection refused"},
	} {
		rec := httptest.NewRecorder()
		writeError(rec, tc.status, tc.code, tc.msg)
		res := rec.Result()
		b.WriteString(res.Status + "\n")
		for _, k := range []string{"Content-Type", "Content-Length", "Cache-Control"} {
			b.WriteString(k + ": " + res.Header.Get(k) + "\n")
		}
		b.WriteString(rec.Body.String() + "\n")
	}
	golden := filepath.Join("testdata", "errors.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("error bodies differ from %s (-want +got):\n%s", golden, diff)
	}
}

// cleanedPath is how a lenient server might read a path: decoded once,
// backslashes as slashes, path parameters dropped, cleaned, lowercased.
// It is written differently from mayReachAPI on purpose.
func cleanedPath(p string) string {
	if d, err := url.PathUnescape(p); err == nil {
		p = d
	}
	p = strings.ReplaceAll(p, "\\", "/")
	segs := strings.Split(p, "/")
	for i, s := range segs {
		s, _, _ = strings.Cut(s, ";")
		segs[i] = s
	}
	return strings.ToLower(path.Clean("/" + strings.Join(segs, "/")))
}

func FuzzClassify(f *testing.F) {
	for _, v := range classifyVectors {
		f.Add(v.method, v.target, v.authority)
	}
	f.Fuzz(func(t *testing.T, method, target, authority string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		rq, bad := classify(method, u, authority, "registry-1.docker.io", 443)
		if bad != nil {
			switch {
			case bad.status != 400 && bad.status != 405 && bad.status != 421:
				t.Fatalf("status %d", bad.status)
			case bad.code != "NAME_INVALID" && bad.code != "UNSUPPORTED" && bad.code != "DENIED":
				t.Fatalf("code %q", bad.code)
			case len(bad.message) > 1024:
				t.Fatalf("message of %d bytes", len(bad.message))
			}
			return
		}
		if authority != "" && !authorityMatches(authority, "registry-1.docker.io", 443) {
			t.Fatalf("accepted a request for %q", authority)
		}
		escaped := u.EscapedPath()
		if rq.route.Kind == 0 {
			// Not an API path: no lenient reading may turn it into one.
			if c := cleanedPath(escaped); c == "/v2" || strings.HasPrefix(c, "/v2/") {
				t.Fatalf("%q passed as a host-level request but reads as %q", escaped, c)
			}
			return
		}
		again, err := ociref.ParsePath(method, escaped)
		if err != nil || again != rq.route {
			t.Fatalf("route %+v does not parse back from %q: %+v %v", rq.route, escaped, again, err)
		}
		if rq.route.Name != "" && rq.action == "" {
			t.Fatalf("repository request %q without an action", escaped)
		}
		if rq.hasMount && rq.route.Kind != ociref.KindBlobUpload {
			t.Fatalf("mount on %v", rq.route.Kind)
		}
	})
}

func FuzzRedirectTarget(f *testing.F) {
	for _, s := range []string{"https://production.cloudflare.docker.com/x", "//a.b/c", "/v2/x", "http://[::1]:80/", "https://a.b:0/", "https://xn--nxasmq6b.example/", "https://ｅｘａｍｐｌｅ.com/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, loc string) {
		h, p, ok := redirectTarget("registry-1.docker.io", 443, loc)
		if !ok {
			if h != "" || p != 0 {
				t.Fatalf("not ok but %q %d", h, p)
			}
			return
		}
		if n, err := policy.NormalizeHost(h); err != nil || n != h {
			t.Fatalf("host %q is not normalized (%q, %v)", h, n, err)
		}
		if p == 0 || (h == "registry-1.docker.io" && p == 443) {
			t.Fatalf("target %q:%d", h, p)
		}
		if _, err := url.Parse(loc); err != nil {
			t.Fatalf("accepted an unparsable location: %v", err)
		}
	})
}

func FuzzStripMount(f *testing.F) {
	for _, s := range []string{"mount=sha256:x&from=a/b", "a=1&mount=x&b=2", "%6Dount=x", "from=&mount", "m%6funt=1&&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out := stripMount(q)
		if vs, err := url.ParseQuery(out); err == nil && (vs.Has("mount") || vs.Has("from")) {
			t.Fatalf("stripMount(%q) = %q still mounts", q, out)
		}
		// What is kept is kept verbatim and in order.
		rest := q
		for _, kv := range strings.Split(out, "&") {
			if kv == "" {
				continue
			}
			i := strings.Index(rest, kv)
			if i < 0 {
				t.Fatalf("stripMount(%q) = %q invents %q", q, out, kv)
			}
			rest = rest[i+len(kv):]
		}
	})
}

func FuzzCheckServerName(f *testing.F) {
	for _, s := range []string{"", "registry-1.docker.io", "REGISTRY-1.docker.io.", "evil.test", "xn--80ak6aa92e.com", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sni string) {
		reason, ok := checkServerName("registry-1.docker.io", 443, sni)
		if ok {
			if n, err := policy.NormalizeHost(sni); err != nil || n != "registry-1.docker.io" {
				t.Fatalf("accepted %q", sni)
			}
			return
		}
		if reason == "" || len(reason) > 512 {
			t.Fatalf("refusal of %q with reason %q", sni, reason)
		}
	})
}

func TestClassifyVectorsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range classifyVectors {
		k := v.method + " " + v.target + " " + v.authority
		if seen[k] {
			t.Errorf("duplicate vector %s", k)
		}
		seen[k] = true
	}
}
