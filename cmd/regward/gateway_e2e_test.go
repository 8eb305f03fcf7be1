package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regward/regward/internal/clienttest"
	"github.com/regward/regward/internal/registrytest"
	"github.com/regward/regward/internal/regwardtest"
)

// api calls the control plane with a bearer token and returns status and body.
func api(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// TestServeGatewayWithDocker is the whole path a user takes: regward serve
// with its embedded gateway, a real dockerd using it as proxy with a
// member's token, and policy changes made through the API while the daemon
// keeps running.
func TestServeGatewayWithDocker(t *testing.T) {
	clienttest.Require(t, "dockerd")
	reg := registrytest.Start(t, "allowed.test", "denied.test")
	reg.Push(t, "allowed.test", "app:v1")
	reg.Push(t, "denied.test", "app:v1")
	allowed, denied := reg.HostPort("allowed.test"), reg.HostPort("denied.test")

	data := t.TempDir()
	listen, proxy := regwardtest.FreeAddr(t), regwardtest.FreeAddr(t)
	base := "http://" + listen
	p := regwardtest.Start(t, []string{"REGWARD_ADMIN_PASSWORD=correct-horse-battery-staple"}, "serve",
		"--data", data, "--org", "acme", "--listen", listen, "--proxy-listen", proxy,
		"--resolve", "allowed.test="+reg.Addr, "--resolve", "denied.test="+reg.Addr)
	p.WaitHTTP(t, base+"/healthz", 30*time.Second)
	tok, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(tok))

	// alice is a member; her token is the proxy credential.
	code, body := api(t, "POST", base+"/api/v1/orgs/acme/members", admin, map[string]string{"username": "alice", "role": "member", "password": "alice-password-1234"})
	if code != http.StatusCreated {
		t.Fatalf("add alice: %d %s", code, body)
	}
	req, _ := http.NewRequest("POST", base+"/api/v1/tokens", strings.NewReader(`{"org":"acme"}`))
	req.SetBasicAuth("alice", "alice-password-1234")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var at struct{ Token string }
	_ = json.NewDecoder(resp.Body).Decode(&at)
	resp.Body.Close()
	if at.Token == "" {
		t.Fatalf("alice's token: status %d", resp.StatusCode)
	}

	setRegistries := func(hosts ...string) time.Time {
		t.Helper()
		var regs []map[string]string
		for _, h := range hosts {
			regs = append(regs, map[string]string{"host": h})
		}
		code, body := api(t, "PUT", base+"/api/v1/orgs/acme/registry-access", admin, map[string]any{"enabled": true, "registries": regs})
		if code != http.StatusOK {
			t.Fatalf("PUT registry-access %v: %d %s", hosts, code, body)
		}
		return time.Now()
	}
	setRegistries("allowed.test")

	d := clienttest.StartDocker(t, clienttest.DockerOptions{
		ProxyURL: "http://alice:" + at.Token + "@" + proxy,
		CAFiles:  map[string]string{allowed: reg.CAFile, denied: reg.CAFile},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reason := fmt.Sprintf("registry %s is not allowed by organization acme; ask an owner to add it to the allowed registries", denied)

	if out, err := d.Pull(ctx, allowed+"/app:v1"); err != nil {
		t.Fatalf("allowed pull: %v\n%s", err, out)
	}
	out, err := d.Pull(ctx, denied+"/app:v1")
	if err == nil || !strings.Contains(out, reason) {
		t.Fatalf("denied pull: err %v, output does not carry the reason:\n%s", err, out)
	}

	// Save & Apply through the API reaches the gateway at once: the very
	// next pull, started right after the PUT returned, succeeds.
	applied := setRegistries("allowed.test", "denied.test")
	if out, err := d.Pull(ctx, denied+"/app:v1"); err != nil {
		t.Fatalf("pull right after allowing %s: %v\n%s", denied, err, out)
	}
	t.Logf("pull after Save & Apply finished %v after the PUT returned", time.Since(applied).Round(time.Millisecond))

	setRegistries("allowed.test")
	if err := d.RemoveImage(ctx, denied+"/app:v1"); err != nil {
		t.Fatal(err)
	}
	out, err = d.Pull(ctx, denied+"/app:v1")
	if err == nil || !strings.Contains(out, reason) {
		t.Fatalf("pull after removing %s again: err %v\n%s", denied, err, out)
	}

	// The denial is in the activity log, with who and where.
	code, body = api(t, "GET", base+"/api/v1/orgs/acme/activity?kind=denial", admin, nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"actor": "alice"`) || !strings.Contains(string(body), denied) {
		// The decision log is written in batches of at most a second.
		time.Sleep(1500 * time.Millisecond)
		code, body = api(t, "GET", base+"/api/v1/orgs/acme/activity?kind=denial", admin, nil)
	}
	if code != http.StatusOK || !strings.Contains(string(body), `"actor": "alice"`) || !strings.Contains(string(body), "denied.test") {
		t.Fatalf("denials in the activity log: %d %s", code, body)
	}

	// A wrong token: the sign-in reason (the proxy refuses before any TLS,
	// so this daemon needs no CA).
	d2 := clienttest.StartDocker(t, clienttest.DockerOptions{ProxyURL: "http://alice:rw_wrong@" + proxy})
	out, err = d2.Pull(ctx, allowed+"/app:v1")
	if err == nil || !strings.Contains(out, "sign in to your organization: run `regward login`") {
		t.Fatalf("wrong token: err %v\n%s", err, out)
	}
}
