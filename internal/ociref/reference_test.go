package ociref

import (
	"strings"
	"testing"
)

func TestParseReference(t *testing.T) {
	for _, tc := range []struct {
		in                         string
		host                       string
		port                       uint16
		repo, tag, digest, wantStr string
	}{
		{in: "nginx", host: "docker.io", repo: "library/nginx", wantStr: "docker.io/library/nginx"},
		{in: "nginx:1.27", host: "docker.io", repo: "library/nginx", tag: "1.27", wantStr: "docker.io/library/nginx:1.27"},
		{in: "docker.io/nginx", host: "docker.io", repo: "library/nginx", wantStr: "docker.io/library/nginx"},
		{in: "index.docker.io/x/y", host: "docker.io", repo: "x/y", wantStr: "docker.io/x/y"},
		{in: "someone/tool:2", host: "docker.io", repo: "someone/tool", tag: "2", wantStr: "docker.io/someone/tool:2"},
		{in: "ghcr.io/a/b:1", host: "ghcr.io", repo: "a/b", tag: "1", wantStr: "ghcr.io/a/b:1"},
		{in: "registry.corp.example:5000/team/app", host: "registry.corp.example", port: 5000, repo: "team/app", wantStr: "registry.corp.example:5000/team/app"},
		{in: "localhost:5000/app", host: "localhost", port: 5000, repo: "app", wantStr: "localhost:5000/app"},
		{in: "[::1]:5000/app:v1", host: "::1", port: 5000, repo: "app", tag: "v1", wantStr: "[::1]:5000/app:v1"},
		{in: "[2001:db8::1]/team/app", host: "2001:db8::1", repo: "team/app", wantStr: "[2001:db8::1]/team/app"},
		{in: "127.0.0.1:5000/app", host: "127.0.0.1", port: 5000, repo: "app", wantStr: "127.0.0.1:5000/app"},
		{in: "Docker.IO/nginx", host: "docker.io", repo: "library/nginx", wantStr: "docker.io/library/nginx"},
		{in: "INDEX.docker.io/nginx:1", host: "docker.io", repo: "library/nginx", tag: "1", wantStr: "docker.io/library/nginx:1"},
		// docker aliases only the bare domain; with a port it is another registry name.
		{in: "docker.io:443/nginx", host: "docker.io", port: 443, repo: "nginx", wantStr: "docker.io:443/nginx"},
		{in: "MyReg/app", host: "myreg", repo: "app", wantStr: "MYREG/app"},
		{in: "Registry.Corp.Example/team", host: "registry.corp.example", repo: "team", wantStr: "registry.corp.example/team"},
		{in: "alpine@sha256:" + sha, host: "docker.io", repo: "library/alpine", digest: "sha256:" + sha, wantStr: "docker.io/library/alpine@sha256:" + sha},
	} {
		r, err := ParseReference(tc.in)
		if err != nil {
			t.Errorf("ParseReference(%q): %v", tc.in, err)
			continue
		}
		if r.Host != tc.host || r.Port != tc.port || r.Repository != tc.repo || r.Tag != tc.tag || r.Digest != tc.digest {
			t.Errorf("ParseReference(%q) = %+v", tc.in, r)
		}
		if r.String() != tc.wantStr {
			t.Errorf("ParseReference(%q).String() = %q, want %q", tc.in, r.String(), tc.wantStr)
		}
	}
}

const sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParseReferenceRejects(t *testing.T) {
	for _, in := range []string{"", "a b", "nginx:", "ghcr.io/a/b@sha256:short", "http://ghcr.io/a", "-lead", "reg:0/app", "reg:70000/app", "ghcr.io/Team/app", "NGINX", "[::1/app", "a/b:" + sha + sha + "x"} {
		if r, err := ParseReference(in); err == nil {
			t.Errorf("ParseReference(%q) = %+v, want an error", in, r)
		}
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"nginx", "ghcr.io/a/b:1", "index.docker.io/x/y", "[::1]:5000/app", "a@sha256:" + sha, "Docker.IO/nginx", "[2001:db8::1]/a", "docker.io:443/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			return
		}
		if r.Host == "" || r.Repository == "" {
			t.Fatalf("ParseReference(%q) = %+v: empty host or repository", s, r)
		}
		if r.Host == "index.docker.io" {
			t.Fatalf("ParseReference(%q) kept the legacy Docker Hub alias", s)
		}
		if r.Host == DockerHub && r.Port == 0 && !strings.Contains(r.Repository, "/") {
			t.Fatalf("ParseReference(%q) = %+v: Docker Hub name without its namespace", s, r)
		}
		// The rendered form names the same image, so what is logged and
		// checked again later is what was decided on.
		if r2, err := ParseReference(r.String()); err != nil || r2 != r {
			t.Fatalf("ParseReference(%q) = %+v renders as %q, which parses to %+v, %v", s, r, r.String(), r2, err)
		}
	})
}
