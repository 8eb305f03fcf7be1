package scale

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regward/regward/internal/clienttest"
	"github.com/regward/regward/internal/registrytest"
	"github.com/regward/regward/internal/regwardtest"
)

// failoverBound is how soon a gateway whose replica died must enforce a
// change made on another replica: the dead replica's connections fail at
// once (the kernel resets them), so this is the gateway's retry, not a
// timeout.
const failoverBound = 5 * time.Second

var gatewayHelp struct {
	once sync.Once
	text string
	err  error
}

// requireGatewayCommand skips (fails in CI) when the binary has no
// standalone gateway following control planes.
func requireGatewayCommand(t *testing.T) {
	t.Helper()
	gatewayHelp.once.Do(func() {
		gatewayHelp.text, gatewayHelp.err = regwardtest.Run(t, nil, "", "gateway", "--help")
	})
	if gatewayHelp.err != nil {
		t.Fatalf("regward gateway --help: %v\n%s", gatewayHelp.err, gatewayHelp.text)
	}
	for _, f := range []string{"--control-plane", "--token", "--proxy-listen", "--resolve", "--cache-dir"} {
		if !strings.Contains(gatewayHelp.text, f) {
			requireEnv(t, "`regward gateway` has no %s flag yet", f)
		}
	}
}

// gatewayProc is one `regward gateway`.
type gatewayProc struct {
	*regwardtest.Process
	addr string
}

func startGateway(t *testing.T, name, token string, controlPlanes []string, reg *registrytest.Registry) *gatewayProc {
	t.Helper()
	g := &gatewayProc{addr: regwardtest.FreeAddr(t)}
	args := []string{"gateway", "--control-plane", strings.Join(controlPlanes, ","),
		"--proxy-listen", g.addr, "--cache-dir", t.TempDir()}
	for _, opt := range [][2]string{{"--gateway-name", name}, {"--log-level", "debug"}} {
		if strings.Contains(gatewayHelp.text, opt[0]+" ") {
			args = append(args, opt[0], opt[1])
		}
	}
	for _, n := range reg.Names {
		args = append(args, "--resolve", n+"="+reg.Addr)
	}
	if strings.Contains(gatewayHelp.text, "--upstream-ca ") {
		args = append(args, "--upstream-ca", reg.CAFile)
	}
	// The token goes in the environment, as a deployment should pass it:
	// a command line is visible to every user of the machine.
	g.Process = startProcess(t, name, []string{"REGWARD_TOKEN=" + token}, args...)
	g.WaitListening(t, g.addr, 30*time.Second)
	return g
}

// proxyURL is the gateway's address with a member's credentials in it.
func (g *gatewayProc) proxyURL(user, token string) string {
	return (&url.URL{Scheme: "http", User: url.UserPassword(user, token), Host: g.addr}).String()
}

// probe makes one fresh CONNECT through the gateway to the registry and a
// GET /v2/ inside: allowed reports whether it got through, and err is set
// when the answer is neither a pass nor the policy's refusal.
func probe(ctx context.Context, proxy string, reg *registrytest.Registry, host string) (allowed bool, err error) {
	pu, err := url.Parse(proxy)
	if err != nil {
		return false, err
	}
	tr := &http.Transport{
		Proxy:             http.ProxyURL(pu),
		TLSClientConfig:   &tls.Config{RootCAs: reg.CertPool},
		DisableKeepAlives: true, // each probe is a new tunnel, decided anew
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "https://"+reg.HostPort(host)+"/v2/", nil)
	if err != nil {
		return false, err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		if strings.Contains(err.Error(), deniedReason(reg.HostPort(host))) {
			return false, nil
		}
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET /v2/ through the gateway: %s", resp.Status)
	}
	return true, nil
}

// deniedReason is DESIGN.md's reason phrase for a denied CONNECT.
func deniedReason(hostport string) string {
	return "registry " + hostport + " is not allowed by organization " + org +
		"; ask an owner to add it to the allowed registries"
}

// waitEnforced probes until the gateway's decision is want and returns how
// long after since that was; it fails the test after limit.
func waitEnforced(t *testing.T, g *gatewayProc, proxy string, reg *registrytest.Registry, host string, want bool, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	ctx := testContext(t, limit+10*time.Second)
	var last error
	for {
		got, err := probe(ctx, proxy, reg, host)
		if err == nil && got == want {
			return time.Since(since)
		}
		last = err
		if time.Since(since) > limit {
			t.Fatalf("%s: %s still %s %v after the change (last error: %v)", g.Name, host, verb(!want), limit, last)
		}
		if !g.Running() {
			t.Fatalf("%s exited (%v)", g.Name, g.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func verb(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "denied"
}

// skopeoPull copies the test image through the gateway and checks the
// outcome: a pull when allowed, DESIGN.md's refusal when denied.
func skopeoPull(t *testing.T, proxy string, reg *registrytest.Registry, host string, allowed bool) {
	t.Helper()
	ctx := testContext(t, 2*time.Minute)
	dst := "dir:" + filepath.Join(t.TempDir(), "img")
	out, err := clienttest.SkopeoCopy(ctx, proxy, reg.CADir, "docker://"+reg.Ref(host, "app:v1"), dst)
	switch {
	case allowed && err != nil:
		t.Fatalf("skopeo through the gateway, registry allowed: %v\n%s", err, out)
	case !allowed && err == nil:
		t.Fatalf("skopeo through the gateway pulled from a denied registry:\n%s", out)
	case !allowed && !strings.Contains(out, deniedReason(reg.HostPort(host))):
		t.Fatalf("skopeo's output lacks the refusal %q:\n%s", deniedReason(reg.HostPort(host)), out)
	}
	if allowed {
		if _, err := os.Stat(filepath.Join(strings.TrimPrefix(dst, "dir:"), "manifest.json")); err != nil {
			t.Fatalf("skopeo wrote no manifest: %v\n%s", err, out)
		}
	}
}

// PostgreSQL, two control-plane replicas, two standalone gateways each
// following a different replica, and skopeo pulling through gateway 2 while
// an owner changes the policy on replica 1. Then replica 2 dies (SIGKILL):
// gateway 2, told of both replicas, goes on with replica 1; replica 2 comes
// back and catches up.
func TestGatewayFleetFollowsReplicas(t *testing.T) {
	requireGatewayCommand(t)
	clienttest.RequireSkopeo(t)
	reg := registrytest.Start(t, "allowed.test")
	reg.Push(t, "allowed.test", "app:v1")
	const host = "allowed.test"

	c := startCluster(t, 2)
	r1, r2 := c.replicas[0], c.replicas[1]
	owner := newClient(r1.url, c.adminToken)
	alice := addMember(t, owner, r1.url, "alice", "member")
	v := owner.mustApply(t, policyAllowing(host), 0)

	gw1 := startGateway(t, "gw1", c.gatewayToken, []string{r1.url}, reg)
	gw2 := startGateway(t, "gw2", c.gatewayToken, []string{r2.url, r1.url}, reg)
	p1, p2 := gw1.proxyURL("alice", alice), gw2.proxyURL("alice", alice)
	start := time.Now()
	waitEnforced(t, gw1, p1, reg, host, true, start, 30*time.Second)
	waitEnforced(t, gw2, p2, reg, host, true, start, 30*time.Second)
	skopeoPull(t, p2, reg, host, true)

	// change applies allow (or not) on replica 1 and checks both gateways.
	var delays []time.Duration
	change := func(allow bool, bound time.Duration, label string) {
		t.Helper()
		p := policyAllowing()
		if allow {
			p = policyAllowing(host)
		}
		t0 := time.Now()
		v = owner.mustApply(t, p, v)
		d := waitEnforced(t, gw2, p2, reg, host, allow, t0, bound)
		delays = append(delays, d)
		t.Logf("%s: version %d (%s %s) enforced on gw2 %v after Save & Apply on replica 1", label, v, host, verb(allow), d.Round(time.Millisecond))
		if gw1.Running() {
			waitEnforced(t, gw1, p1, reg, host, allow, t0, propagationBound)
		}
		skopeoPull(t, p2, reg, host, allow)
	}
	for i := range 6 {
		change(i%2 == 1, propagationBound, fmt.Sprintf("change %d", i+1))
	}

	// Replica 2 dies without a word; gateway 2, which follows it (the only
	// long-poll replica 2 holds is gateway 2's), has replica 1 too.
	waitMetric(t, r2.url, "regward_policy_long_polls", 1, 10*time.Second)
	r2.Kill()
	change(false, failoverBound, "after replica 2 was killed")
	change(true, propagationBound, "next change, gw2 on replica 1")

	// Replica 2 comes back on the same address: it reads the current
	// version from the database and its long-polls answer it at once.
	r2.start(t)
	gwOnR2 := newClient(r2.url, c.gatewayToken)
	ctx := testContext(t, 30*time.Second)
	snap, changed, err := gwOnR2.longPoll(ctx, v-1, 5*time.Second)
	if err != nil || !changed || snap.Version != v || !listsHost(snap.Policy, host) {
		t.Fatalf("restarted replica 2: long-poll after=%d answered version %d changed=%v err=%v, want version %d at once", v-1, snap.Version, changed, err, v)
	}
	// And it follows the changes made on replica 1 again.
	got := make(chan snapshotAnswer, 1)
	go func() {
		s, ok, err := gwOnR2.longPoll(ctx, v, 30*time.Second)
		if err == nil && ok {
			got <- s
		}
		close(got)
	}()
	time.Sleep(100 * time.Millisecond)
	t0 := time.Now()
	v = owner.mustApply(t, policyAllowing(), v)
	if s, ok := <-got; !ok || s.Version != v {
		t.Fatalf("restarted replica 2 did not pass on version %d (got %+v)", v, s)
	}
	if d := time.Since(t0); d > propagationBound {
		t.Errorf("restarted replica 2 passed on version %d after %v, want within %v", v, d, propagationBound)
	}
	change(true, propagationBound, "after replica 2 came back")

	// The denials gateway 2 saw are on record, uploaded through whichever
	// replica it could reach.
	waitDenialRecorded(t, owner, "gw2", host, 30*time.Second)
	t.Logf("gw2 enforcement delays: %v", delays)
}

// waitDenialRecorded waits until the activity log holds a denial of host
// by the named gateway.
func waitDenialRecorded(t *testing.T, owner *client, gateway, host string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r := owner.must(t, http.StatusOK, "GET", "/api/v1/orgs/"+org+"/activity?kind=denial&limit=100", nil, nil)
		var page struct {
			Items []struct {
				Actor  string         `json:"actor"`
				Detail map[string]any `json:"detail"`
			} `json:"items"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			h, _ := it.Detail["host"].(string)
			if it.Detail["gateway"] == gateway && (h == host || strings.HasPrefix(h, host+":")) && it.Actor == "alice" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no denial of %s by %s in the activity log after %v: %s", host, gateway, limit, r.body)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// hungFailoverBound is how soon a gateway whose replica hangs (a frozen
// host, packets dropped) must enforce a change made on another replica.
// Nothing resets its connections, so it is the gateway's own deadline on a
// long-poll: the 30 s wait it asks for, its 15 s of grace, and a retry.
const hungFailoverBound = 60 * time.Second

// A replica that hangs rather than dies: the kernel keeps its sockets, so
// the gateway's long-poll just never answers. The gateway, told of both
// replicas, must give up on it and take the change from the other.
func TestGatewayFailsOverFromHungReplica(t *testing.T) {
	requireGatewayCommand(t)
	reg := registrytest.Start(t, "allowed.test")
	const host = "allowed.test"
	c := startCluster(t, 2)
	r1, r2 := c.replicas[0], c.replicas[1]
	owner := newClient(r1.url, c.adminToken)
	alice := addMember(t, owner, r1.url, "alice", "member")
	v := owner.mustApply(t, policyAllowing(host), 0)

	gw := startGateway(t, "gw", c.gatewayToken, []string{r2.url, r1.url}, reg)
	proxy := gw.proxyURL("alice", alice)
	waitEnforced(t, gw, proxy, reg, host, true, time.Now(), 30*time.Second)
	// The gateway follows replica 2, the first it was given.
	waitMetric(t, r2.url, "regward_policy_long_polls", 1, 10*time.Second)

	r2.Pause(t)
	t0 := time.Now()
	v = owner.mustApply(t, policyAllowing(), v)
	d := waitEnforced(t, gw, proxy, reg, host, false, t0, hungFailoverBound)
	t.Logf("version %d enforced %v after replica 2 hung", v, d.Round(time.Millisecond))
	// Once failed over, changes arrive at the usual pace.
	t0 = time.Now()
	v = owner.mustApply(t, policyAllowing(host), v)
	d = waitEnforced(t, gw, proxy, reg, host, true, t0, propagationBound)
	t.Logf("version %d enforced %v after Save & Apply, on replica 1", v, d.Round(time.Millisecond))
	r2.Resume(t)
}

// waitMetric waits until a replica's /metrics shows sample >= min.
func waitMetric(t *testing.T, base, sample string, min int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := metricValue(t, base, sample)
		if got >= min {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s is %d after %v, want at least %d", base, sample, got, limit, min)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
