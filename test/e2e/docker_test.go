package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regward/regward/internal/clienttest"
)

// TestDockerThroughGateway drives a private dockerd whose HTTPS_PROXY is
// the gateway, and changes the policy while the daemon keeps running.
func TestDockerThroughGateway(t *testing.T) {
	e := startEnv(t)
	d := clienttest.StartDocker(t, clienttest.DockerOptions{
		ProxyURL: e.proxyURL("alice", ""),
		CAFiles:  map[string]string{e.allowed(): e.reg.CAFile, e.denied(): e.reg.CAFile},
	})
	ctx := ctxFor(t, 4*time.Minute)
	allowedRef := e.reg.Ref("allowed.test", "app:v1")
	deniedRef := e.reg.Ref("denied.test", "app:v1")

	t.Run("allowed registry", func(t *testing.T) {
		if err := wantAllowed(d.Pull(ctx, allowedRef)); err != nil {
			t.Fatalf("docker pull %s: %v", allowedRef, err)
		}
		if len(e.decisions.find("allowed.test", true)) == 0 {
			t.Errorf("no allowed decision recorded for allowed.test")
		}
	})

	t.Run("denied registry", func(t *testing.T) {
		before := e.reg.Hits(e.denied())
		out, err := d.Pull(ctx, deniedRef)
		t.Logf("docker pull %s: %s", deniedRef, strings.TrimSpace(out))
		if err := wantDenied(out, err, deniedReason(e.denied())); err != nil {
			t.Fatalf("docker pull %s: %v", deniedRef, err)
		}
		// DESIGN.md quotes what docker prints; users search for it.
		want := fmt.Sprintf(`Error response from daemon: Get "https://%s/v2/": %s`, e.denied(), deniedReason(e.denied()))
		if !strings.Contains(out, want) {
			t.Errorf("docker output differs from DESIGN.md:\n got: %s\nwant: %s", strings.TrimSpace(out), want)
		}
		if n := e.reg.Hits(e.denied()) - before; n != 0 {
			t.Errorf("the registry received %d requests for %s through a denied tunnel", n, e.denied())
		}
		ds := e.decisions.find("denied.test", false)
		if len(ds) == 0 {
			t.Fatalf("no denial recorded for denied.test")
		}
		got := ds[len(ds)-1]
		if got.Org != org || got.User != "alice" || got.Port != e.reg.Port || got.Gateway != "e2e" {
			t.Errorf("denial recorded as org=%q user=%q port=%d gateway=%q, want %s alice %d e2e",
				got.Org, got.User, got.Port, got.Gateway, org, e.reg.Port)
		}
	})

	t.Run("allowing the registry applies to the running daemon", func(t *testing.T) {
		e.policies.allow(t, "allowed.test", "denied.test")
		eventually(t, "docker pull after allowing denied.test", func() error {
			return wantAllowed(d.Pull(ctx, deniedRef))
		})
	})

	t.Run("removing it denies again", func(t *testing.T) {
		e.policies.allow(t, "allowed.test")
		eventually(t, "docker pull after removing denied.test", func() error {
			out, err := d.Pull(ctx, deniedRef)
			return wantDenied(out, err, deniedReason(e.denied()))
		})
		if err := wantAllowed(d.Pull(ctx, allowedRef)); err != nil {
			t.Errorf("docker pull %s after the change: %v", allowedRef, err)
		}
	})

	t.Run("wrong token", func(t *testing.T) {
		// dockerd reads its proxy once at start: another credential needs
		// another daemon.
		d2 := clienttest.StartDocker(t, clienttest.DockerOptions{
			ProxyURL: e.proxyURL("alice", "rw_not_a_valid_token"),
		})
		before := e.reg.Hits(e.allowed())
		out, err := d2.Pull(ctx, allowedRef)
		t.Logf("docker pull %s with a wrong token: %s", allowedRef, strings.TrimSpace(out))
		if err := wantDenied(out, err, signInReason); err != nil {
			t.Fatalf("docker pull with a wrong token: %v", err)
		}
		if n := e.reg.Hits(e.allowed()) - before; n != 0 {
			t.Errorf("the registry received %d requests from an unauthenticated client", n)
		}
	})
}
