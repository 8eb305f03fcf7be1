package clienttest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regward/regward/internal/registrytest"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// connectsOf returns the CONNECT log entries for one target.
func connectsOf(p *testProxy, target string) []string {
	var out []string
	for _, l := range p.log() {
		if strings.Contains(l, " "+target+" ") {
			out = append(out, l)
		}
	}
	return out
}

func TestDockerThroughProxy(t *testing.T) {
	reg := registrytest.Start(t, "allowed.test", "denied.test", "registry-1.docker.io")
	reg.Push(t, "allowed.test", "app:v1")
	reg.Push(t, "registry-1.docker.io", "library/hubapp:v1")
	proxy := startTestProxy(t, reg.Addr, "alice", "secret", "denied.test")
	allowed, denied := reg.HostPort("allowed.test"), reg.HostPort("denied.test")

	d := StartDocker(t, DockerOptions{
		ProxyURL: proxy.URL,
		CAFiles:  map[string]string{allowed: reg.CAFile, denied: reg.CAFile},
		CABundle: reg.CAFile,
	})
	for _, hp := range []string{allowed, denied} {
		if _, err := os.Stat(filepath.Join(DockerCertsDir, hp, "ca.crt")); err != nil {
			t.Errorf("CA for %s not installed: %v", hp, err)
		}
	}
	ctx := ctxT(t, 3*time.Minute)

	t.Run("allowed pull goes through the proxy with the credential", func(t *testing.T) {
		out, err := d.Pull(ctx, reg.Ref("allowed.test", "app:v1"))
		if err != nil {
			t.Fatalf("pull: %v\n%s", err, out)
		}
		got := connectsOf(proxy, allowed)
		if len(got) == 0 || !slices.Contains(got, "alice "+allowed+" 200") {
			t.Errorf("proxy CONNECT log for %s = %q, want alice with status 200", allowed, got)
		}
		if _, err := d.ImageID(ctx, reg.Ref("allowed.test", "app:v1")); err != nil {
			t.Errorf("image not present after pull: %v", err)
		}
	})

	t.Run("denied pull shows the proxy's reason phrase", func(t *testing.T) {
		before := reg.Hits(denied)
		out, err := d.Pull(ctx, reg.Ref("denied.test", "app:v1"))
		if err == nil {
			t.Fatalf("pull through a refusing proxy succeeded:\n%s", out)
		}
		t.Logf("docker pull output:\n%s", out)
		want := "registry " + denied + " is " + testDenyReason
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
		if n := reg.Hits(denied); n != before {
			t.Errorf("registry saw %d requests for %s after the proxy refused", n-before, denied)
		}
	})

	t.Run("docker hub name trusts the CA bundle", func(t *testing.T) {
		// docker.io/library/hubapp goes to registry-1.docker.io:443, for
		// which dockerd ignores certs.d: only SSL_CERT_FILE makes it trust
		// the test CA.
		out, err := d.Pull(ctx, "hubapp:v1")
		if err != nil {
			t.Fatalf("pull: %v\n%s", err, out)
		}
		if got := connectsOf(proxy, "registry-1.docker.io:443"); len(got) == 0 {
			t.Errorf("no CONNECT to registry-1.docker.io:443 in %q", proxy.log())
		}
	})

	t.Run("tag and push", func(t *testing.T) {
		dst := reg.Ref("allowed.test", "copy:v2")
		if err := d.Tag(ctx, reg.Ref("allowed.test", "app:v1"), dst); err != nil {
			t.Fatal(err)
		}
		if out, err := d.Push(ctx, dst); err != nil {
			t.Fatalf("push: %v\n%s", err, out)
		}
		if err := d.RemoveImage(ctx, dst); err != nil {
			t.Fatal(err)
		}
		if out, err := d.Pull(ctx, dst); err != nil {
			t.Fatalf("pull of the pushed image: %v\n%s", err, out)
		}
	})

	// A second daemon with a wrong credential: dockerd reads the proxy once
	// at start, so a credential change needs a new daemon. Its certs.d
	// entry must be gone when its test ends.
	var other string
	t.Run("wrong credential", func(t *testing.T) {
		other = reg.HostPort("registry-1.docker.io")
		d2 := StartDocker(t, DockerOptions{
			ProxyURL: proxy.withToken("wrong"),
			CAFiles:  map[string]string{other: reg.CAFile},
		})
		out, err := d2.Pull(ctx, reg.Ref("registry-1.docker.io", "library/hubapp:v1"))
		if err == nil {
			t.Fatalf("pull with a wrong proxy credential succeeded:\n%s", out)
		}
		if !strings.Contains(out, testAuthReason) {
			t.Errorf("output lacks %q:\n%s", testAuthReason, out)
		}
	})
	if _, err := os.Stat(filepath.Join(DockerCertsDir, other)); !os.IsNotExist(err) {
		t.Errorf("certs.d entry %s left behind after its daemon stopped (err %v)", other, err)
	}

	t.Run("an existing certs.d entry is refused", func(t *testing.T) {
		// allowed.test:PORT is installed by the first daemon; a second one
		// must not take it over (or remove it at its own cleanup).
		d3, err := startDocker("dockerd", "docker", DockerOptions{CAFiles: map[string]string{allowed: reg.CAFile}})
		if d3 != nil {
			d3.stop()
			d3.removeAll(t)
		}
		if err == nil || !strings.Contains(err.Error(), allowed) {
			t.Errorf("startDocker with a taken certs.d entry: err = %v, want one naming %s", err, allowed)
		}
		if _, err := os.Stat(filepath.Join(DockerCertsDir, allowed, "ca.crt")); err != nil {
			t.Errorf("first daemon's CA file gone: %v", err)
		}
	})
}

func TestSkopeoThroughProxy(t *testing.T) {
	RequireSkopeo(t)
	reg := registrytest.Start(t, "allowed.test", "denied.test")
	reg.Push(t, "allowed.test", "app:v1")
	proxy := startTestProxy(t, reg.Addr, "alice", "secret", "denied.test")
	ctx := ctxT(t, 2*time.Minute)

	dst := "dir:" + filepath.Join(t.TempDir(), "app")
	out, err := SkopeoCopy(ctx, proxy.URL, reg.CADir, "docker://"+reg.Ref("allowed.test", "app:v1"), dst)
	if err != nil {
		t.Fatalf("copy: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(strings.TrimPrefix(dst, "dir:"), "manifest.json")); err != nil {
		t.Errorf("copy wrote no manifest: %v", err)
	}
	if got := connectsOf(proxy, reg.HostPort("allowed.test")); len(got) == 0 {
		t.Errorf("skopeo did not use the proxy: log %q", proxy.log())
	}

	// registry to registry, both ends through the proxy.
	out, err = SkopeoCopy(ctx, proxy.URL, reg.CADir, "docker://"+reg.Ref("allowed.test", "app:v1"), "docker://"+reg.Ref("allowed.test", "copied:v1"))
	if err != nil {
		t.Fatalf("registry-to-registry copy: %v\n%s", err, out)
	}

	out, err = SkopeoCopy(ctx, proxy.URL, reg.CADir, "docker://"+reg.Ref("denied.test", "app:v1"), "dir:"+filepath.Join(t.TempDir(), "x"))
	if err == nil {
		t.Fatalf("copy through a refusing proxy succeeded:\n%s", out)
	}
	if want := "registry " + reg.HostPort("denied.test") + " is " + testDenyReason; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}

	out, err = SkopeoCopy(ctx, proxy.withToken("wrong"), reg.CADir, "docker://"+reg.Ref("allowed.test", "app:v1"), "dir:"+filepath.Join(t.TempDir(), "y"))
	if err == nil || !strings.Contains(out, testAuthReason) {
		t.Errorf("copy with a wrong credential: err %v, output lacks %q:\n%s", err, testAuthReason, out)
	}
}

func TestPodmanThroughProxy(t *testing.T) {
	p := NewPodman(t)
	reg := registrytest.Start(t, "allowed.test", "denied.test")
	reg.Push(t, "allowed.test", "app:v1")
	proxy := startTestProxy(t, reg.Addr, "alice", "secret", "denied.test")
	ctx := ctxT(t, 2*time.Minute)

	ref := reg.Ref("allowed.test", "app:v1")
	out, err := p.Pull(ctx, proxy.URL, reg.CADir, ref)
	if err != nil {
		t.Fatalf("pull: %v\n%s", err, out)
	}
	if _, err := p.ImageID(ctx, ref); err != nil {
		t.Errorf("image not present after pull: %v", err)
	}
	if got := connectsOf(proxy, reg.HostPort("allowed.test")); len(got) == 0 {
		t.Errorf("podman did not use the proxy: log %q", proxy.log())
	}

	out, err = p.Pull(ctx, proxy.URL, reg.CADir, reg.Ref("denied.test", "app:v1"))
	if err == nil {
		t.Fatalf("pull through a refusing proxy succeeded:\n%s", out)
	}
	if want := "registry " + reg.HostPort("denied.test") + " is " + testDenyReason; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

// TestRequireMissingBinary runs a helper test in a child process, once
// with CI=true and once without, to check the skip/fail rule itself.
func TestRequireMissingBinary(t *testing.T) {
	if os.Getenv("CLIENTTEST_HELPER") == "1" {
		Require(t, "regward-no-such-client")
		t.Fatal("Require returned for a missing binary")
	}
	for _, tc := range []struct {
		ci   string
		want string
		fail bool
	}{
		{"", "--- SKIP", false},
		{"true", "--- FAIL", true},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRequireMissingBinary$", "-test.v")
		cmd.Env = append(cleanEnv([]string{"CI"}), "CLIENTTEST_HELPER=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != tc.fail {
			t.Errorf("CI=%q: child err = %v, want failure=%v\n%s", tc.ci, err, tc.fail, out)
		}
		if !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "regward-no-such-client is not installed") {
			t.Errorf("CI=%q: child output lacks %q and the reason:\n%s", tc.ci, tc.want, out)
		}
	}
}
