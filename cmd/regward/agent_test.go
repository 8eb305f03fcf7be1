package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regward/regward/internal/client"
	"github.com/regward/regward/internal/clienttest"
	"github.com/regward/regward/internal/registrytest"
	"github.com/regward/regward/internal/regwardtest"
)

const signInReason = "sign in to your organization: run `regward login`"

func notAllowedReason(hostport string) string {
	return "registry " + hostport + " is not allowed by organization acme; ask an owner to add it to the allowed registries"
}

// startAgent runs `regward agent` on the machine and waits for its state
// file. It is stopped with SIGTERM at cleanup.
func startAgent(t *testing.T, m *machine, args ...string) (*regwardtest.Process, client.AgentState) {
	t.Helper()
	cmd := exec.Command(regwardtest.Binary(t), append([]string{"agent"}, args...)...)
	cmd.Env = m.environ()
	p := regwardtest.StartCommand(t, cmd)
	t.Cleanup(func() {
		if p.Running() {
			_ = p.Signal(syscall.SIGTERM)
			if err := p.Wait(20 * time.Second); err != nil {
				t.Errorf("agent after SIGTERM: %v", err)
			}
		}
	})
	statePath, _ := client.AgentStatePath(m.session)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := client.ReadAgentState(statePath)
		if err == nil && st.PID == p.Pid() {
			return p, st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent wrote no state file: %v\n%s", err, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// proxyConnect sends CONNECT hostport to the proxy without credentials and
// returns the status code and reason phrase.
func proxyConnect(t *testing.T, proxy, hostport string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
	if err != nil {
		t.Fatalf("dial the agent: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", hostport, hostport)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("CONNECT %s through the agent: %v", hostport, err)
	}
	resp.Body.Close()
	return resp.StatusCode, strings.TrimPrefix(resp.Status, fmt.Sprintf("%d ", resp.StatusCode))
}

// waitConnect probes until CONNECT answers status with reason in its
// phrase.
func waitConnect(t *testing.T, proxy, hostport string, status int, reason string, within time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		code, why := proxyConnect(t, proxy, hostport)
		if code == status && strings.Contains(why, reason) {
			return
		}
		if time.Since(start) > within {
			t.Fatalf("CONNECT %s: %d %q after %v, want %d with %q", hostport, code, why, within, status, reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func retry(t *testing.T, what string, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func pullRefused(d *clienttest.Docker, ctx context.Context, ref, reason string) func() error {
	return func() error {
		out, err := d.Pull(ctx, ref)
		if err == nil {
			return fmt.Errorf("docker pull %s succeeded, want refused with %q", ref, reason)
		}
		if !strings.Contains(out, reason) {
			return fmt.Errorf("docker pull %s refused (%v) without %q:\n%s", ref, err, reason, out)
		}
		return nil
	}
}

// TestAgentEnforcesWithDocker is the developer machine end to end: the
// control plane, registry.json, `regward login`, the agent as a private
// dockerd's proxy, live policy changes, the control plane going away,
// the TTL running out, and logout.
func TestAgentEnforcesWithDocker(t *testing.T) {
	clienttest.Require(t, "dockerd", "docker", "containerd", "runc")
	const ttl = 10 * time.Second
	reg := registrytest.Start(t, "allowed.test", "denied.test", "late.test")
	reg.Push(t, "allowed.test", "app:v1")
	allowed, denied, late := reg.HostPort("allowed.test"), reg.HostPort("denied.test"), reg.HostPort("late.test")

	cp := startControlPlane(t)
	cp.applyPolicy(testPolicy("allowed.test"))
	m := newMachine(t, "acme")

	// The agent starts before anyone signs in: it refuses everything.
	agent, st := startAgent(t, m, "--listen", regwardtest.FreeAddr(t), "--policy-ttl", ttl.String(), "--log-level", "debug",
		"--resolve", "allowed.test="+reg.Addr, "--resolve", "denied.test="+reg.Addr, "--resolve", "late.test="+reg.Addr)
	proxy := st.Listen
	d := clienttest.StartDocker(t, clienttest.DockerOptions{
		ProxyURL: "http://" + proxy,
		CAFiles:  map[string]string{allowed: reg.CAFile, denied: reg.CAFile, late: reg.CAFile},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	allowedRef, deniedRef, lateRef := reg.Ref("allowed.test", "app:v1"), reg.Ref("denied.test", "app:v1"), reg.Ref("late.test", "app:v1")

	if err := pullRefused(d, ctx, allowedRef, signInReason)(); err != nil {
		t.Fatalf("before sign-in: %v", err)
	}

	out, code := m.login(cp, "beta", "alice", alicePW)
	if code != 1 || !strings.Contains(out, "this machine requires sign-in to one of: acme") {
		t.Fatalf("login --org beta: exit %d\n%s", code, out)
	}
	out, code = m.login(cp, "acme", "alice", alicePW)
	if code != 0 || !strings.Contains(out, "The agent on "+proxy+" reloaded: enforcing policy version 2 of acme for alice") {
		t.Fatalf("login --org acme: exit %d\n%s", code, out)
	}
	out, _ = m.regward("", "status")
	if !strings.Contains(out, fmt.Sprintf("Agent:        running on %s (pid %d), enforcing policy version 2 of acme for alice", proxy, agent.Pid())) {
		t.Errorf("status:\n%s", out)
	}

	t.Run("allowed pull passes", func(t *testing.T) {
		out, err := d.Pull(ctx, allowedRef)
		if err != nil {
			t.Fatalf("docker pull %s: %v\n%s", allowedRef, err, out)
		}
	})
	t.Run("denied pull shows the reason", func(t *testing.T) {
		before := reg.Hits(denied)
		if err := pullRefused(d, ctx, deniedRef, notAllowedReason(denied))(); err != nil {
			t.Fatal(err)
		}
		if n := reg.Hits(denied) - before; n != 0 {
			t.Errorf("the registry saw %d requests for a denied host", n)
		}
	})
	t.Run("a policy change applies within a second", func(t *testing.T) {
		reg.Push(t, "late.test", "app:v1")
		if code, why := proxyConnect(t, proxy, late); code != http.StatusForbidden {
			t.Fatalf("late.test before the change: %d %s", code, why)
		}
		asked := time.Now()
		cp.applyPolicy(testPolicy("allowed.test", "late.test"))
		waitConnect(t, proxy, late, http.StatusOK, "", 5*time.Second)
		took := time.Since(asked)
		t.Logf("the agent enforced the change %v after Save & Apply was sent", took)
		if took > time.Second {
			t.Errorf("the change took %v to reach the agent, want at most 1s", took)
		}
		if out, err := d.Pull(ctx, lateRef); err != nil {
			t.Fatalf("docker pull %s after allowing it: %v\n%s", lateRef, err, out)
		}
	})

	cp.stop()
	stopped := time.Now()
	t.Run("the cached policy is enforced without the control plane", func(t *testing.T) {
		if code, why := proxyConnect(t, proxy, allowed); code != http.StatusOK {
			t.Errorf("allowed.test with the control plane down: %d %s", code, why)
		}
		if err := pullRefused(d, ctx, deniedRef, notAllowedReason(denied))(); err != nil {
			t.Error(err)
		}
		if err := d.RemoveImage(ctx, allowedRef); err != nil {
			t.Fatal(err)
		}
		if out, err := d.Pull(ctx, allowedRef); err != nil {
			t.Errorf("docker pull %s with the control plane down: %v\n%s", allowedRef, err, out)
		}
		if time.Since(stopped) > ttl {
			t.Errorf("these checks took longer than the TTL (%v): they do not prove the cache", ttl)
		}
	})
	t.Run("past the TTL every pull is denied as expired", func(t *testing.T) {
		const expiredReason = "policy for organization acme expired"
		waitConnect(t, proxy, denied, http.StatusForbidden, expiredReason, ttl+10*time.Second)
		t.Logf("the policy expired %v after the control plane stopped", time.Since(stopped).Round(100*time.Millisecond))
		// The TTL counts from the control plane's last answer, at most one
		// long-poll (TTL/4) before it stopped.
		if since := time.Since(stopped); since < ttl*3/4-time.Second {
			t.Errorf("the policy expired %v after the control plane stopped, well before the TTL of %v", since, ttl)
		}
		if err := pullRefused(d, ctx, deniedRef, expiredReason)(); err != nil {
			t.Error(err)
		}
	})
	t.Run("after logout the agent asks to sign in", func(t *testing.T) {
		out, code := m.regward("", "logout")
		// The control plane is down: the token cannot be revoked, which
		// logout says, but the sign-in is gone here.
		if code != 1 || !strings.Contains(out, "Signed out of organization acme (alice)") || !strings.Contains(out, "not revoked on the server") {
			t.Errorf("logout: exit %d\n%s", code, out)
		}
		if code, why := proxyConnect(t, proxy, allowed); code != http.StatusProxyAuthRequired || why != signInReason {
			t.Errorf("CONNECT after logout: %d %q", code, why)
		}
		retry(t, "docker pull after logout", 15*time.Second, pullRefused(d, ctx, deniedRef, signInReason))
	})
}
