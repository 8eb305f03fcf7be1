package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regward/regward/internal/clienttest"
)

// TestSkopeoThroughGateway copies through the gateway with skopeo, which
// reads HTTPS_PROXY on each run, so credentials and policies change between
// commands without restarting anything.
func TestSkopeoThroughGateway(t *testing.T) {
	clienttest.RequireSkopeo(t)
	e := startEnv(t)
	ctx := ctxFor(t, 3*time.Minute)
	src := func(name string) string { return "docker://" + e.reg.Ref(name, "app:v1") }
	dst := func() string { return "dir:" + filepath.Join(t.TempDir(), "img") }

	if err := wantAllowed(clienttest.SkopeoCopy(ctx, e.proxyURL("alice", ""), e.reg.CADir, src("allowed.test"), dst())); err != nil {
		t.Errorf("skopeo copy from allowed.test: %v", err)
	}
	out, err := clienttest.SkopeoCopy(ctx, e.proxyURL("alice", ""), e.reg.CADir, src("denied.test"), dst())
	if err := wantDenied(out, err, deniedReason(e.denied())); err != nil {
		t.Errorf("skopeo copy from denied.test: %v", err)
	}
	// Owners bypass image rules only; the registry allowlist binds them too.
	out, err = clienttest.SkopeoCopy(ctx, e.proxyURL("olivia", ""), e.reg.CADir, src("denied.test"), dst())
	if err := wantDenied(out, err, deniedReason(e.denied())); err != nil {
		t.Errorf("skopeo copy from denied.test as an owner: %v", err)
	}

	e.policies.allow(t, "allowed.test", "denied.test")
	eventually(t, "skopeo copy after allowing denied.test", func() error {
		return wantAllowed(clienttest.SkopeoCopy(ctx, e.proxyURL("alice", ""), e.reg.CADir, src("denied.test"), dst()))
	})
	e.policies.allow(t, "allowed.test")
	eventually(t, "skopeo copy after removing denied.test", func() error {
		out, err := clienttest.SkopeoCopy(ctx, e.proxyURL("alice", ""), e.reg.CADir, src("denied.test"), dst())
		return wantDenied(out, err, deniedReason(e.denied()))
	})

	for name, proxy := range map[string]string{
		"wrong token":   e.proxyURL("alice", "rw_not_a_valid_token"),
		"unknown user":  e.proxyURL("mallory", "rw_anything"),
		"no credential": "http://" + e.addr,
	} {
		out, err := clienttest.SkopeoCopy(ctx, proxy, e.reg.CADir, src("allowed.test"), dst())
		if err := wantDenied(out, err, signInReason); err != nil {
			t.Errorf("skopeo copy with %s: %v", name, err)
		}
	}
}

// TestPodmanThroughGateway pulls through the gateway with podman.
func TestPodmanThroughGateway(t *testing.T) {
	p := clienttest.NewPodman(t)
	e := startEnv(t)
	ctx := ctxFor(t, 3*time.Minute)

	ref := e.reg.Ref("allowed.test", "app:v1")
	if err := wantAllowed(p.Pull(ctx, e.proxyURL("alice", ""), e.reg.CADir, ref)); err != nil {
		t.Fatalf("podman pull %s: %v", ref, err)
	}
	if _, err := p.ImageID(ctx, ref); err != nil {
		t.Errorf("image missing after the pull: %v", err)
	}
	out, err := p.Pull(ctx, e.proxyURL("alice", ""), e.reg.CADir, e.reg.Ref("denied.test", "app:v1"))
	if err := wantDenied(out, err, deniedReason(e.denied())); err != nil {
		t.Errorf("podman pull from denied.test: %v", err)
	}
	if strings.Contains(out, e.tokens["alice"]) {
		t.Errorf("podman output shows the proxy token:\n%s", out)
	}
}
