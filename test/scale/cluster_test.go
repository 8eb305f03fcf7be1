package scale

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regward/regward/internal/pgtest"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/regwardtest"
)

const (
	org = "acme"
	// adminPassword is given to the first replica through
	// REGWARD_ADMIN_PASSWORD, so that the test can ask for a gateway token.
	adminPassword = "scale-test-admin-password"
)

// replica is one `regward serve --database postgres://... --no-gateway`.
type replica struct {
	*regwardtest.Process
	name   string
	listen string // 127.0.0.1:PORT
	url    string // http://127.0.0.1:PORT
	data   string
	dsn    string
}

// cluster is N control-plane replicas on one PostgreSQL database.
type cluster struct {
	dsn          string
	replicas     []*replica
	adminToken   string // owner of acme, from the first replica's DATA/admin-token
	gatewayToken string
}

// startCluster starts n replicas on a fresh database of the shared
// PostgreSQL server. The first one bootstraps the database: it is started
// and ready before the others start.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	if err := pgtest.Available(); err != nil {
		requireEnv(t, "%v", err)
	}
	c := &cluster{dsn: pgtest.DSN(t)}
	for i := range n {
		r := c.addReplica(t, fmt.Sprintf("replica-%c", 'a'+i))
		if i == 0 {
			tok, err := os.ReadFile(filepath.Join(r.data, "admin-token"))
			if err != nil {
				t.Fatalf("the first replica wrote no admin token: %v\n%s", err, r.Output())
			}
			c.adminToken = strings.TrimSpace(string(tok))
		}
	}
	c.gatewayToken = createGatewayToken(t, c.replicas[0].url)
	return c
}

func (c *cluster) addReplica(t *testing.T, name string) *replica {
	t.Helper()
	r := &replica{name: name, listen: regwardtest.FreeAddr(t), data: t.TempDir(), dsn: c.dsn}
	r.url = "http://" + r.listen
	r.start(t)
	c.replicas = append(c.replicas, r)
	return r
}

// start (re)starts the replica's process with the same flags and waits
// until it is ready.
func (r *replica) start(t *testing.T) {
	t.Helper()
	r.launch(t)
	r.WaitHTTP(t, r.url+"/readyz", 60*time.Second)
}

// launch starts the replica's process without waiting for it.
func (r *replica) launch(t *testing.T) {
	t.Helper()
	r.Process = startProcess(t, r.name, []string{"REGWARD_ADMIN_PASSWORD=" + adminPassword},
		"serve", "--data", r.data, "--org", org, "--listen", r.listen,
		"--database", r.dsn, "--no-gateway", "--log-level", "info")
}

// client is an API client of one replica with one token.
type client struct {
	base  string
	token string
	hc    *http.Client
}

func newClient(base, token string) *client {
	return &client{base: base, token: token, hc: &http.Client{
		Timeout:   90 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute},
	}}
}

// response is a finished API exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

func (c *client) do(ctx context.Context, method, path string, header http.Header, body []byte) (response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return response{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// must runs a request that must answer want.
func (c *client) must(t *testing.T, want int, method, path string, header http.Header, body any) response {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	r, err := c.do(testContext(t, 30*time.Second), method, path, header, b)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, c.base, path, err)
	}
	if r.status != want {
		t.Fatalf("%s %s%s: %s, want %d", method, c.base, path, r, want)
	}
	return r
}

func etagVersion(h http.Header) (int64, error) {
	e := strings.Trim(strings.TrimPrefix(h.Get("ETag"), "W/"), `"`)
	v, err := strconv.ParseInt(e, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("ETag %q is not a version", h.Get("ETag"))
	}
	return v, nil
}

// policyOf reads the org's policy and its version.
func (c *client) policyOf(t *testing.T) (policy.Policy, int64) {
	t.Helper()
	r := c.must(t, http.StatusOK, "GET", "/api/v1/orgs/"+org+"/policy", nil, nil)
	var p policy.Policy
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode policy: %v\n%s", err, r.body)
	}
	v, err := etagVersion(r.header)
	if err != nil {
		t.Fatal(err)
	}
	return p, v
}

// applyResult is the answer to a Save & Apply.
type applyResult struct {
	Org     string          `json:"org"`
	Version int64           `json:"version"`
	Applied bool            `json:"applied"`
	Policy  policy.Policy   `json:"policy"`
	Changes json.RawMessage `json:"changes"`
}

// apply PUTs p with If-Match: "ifMatch" (none when 0).
func (c *client) apply(ctx context.Context, p policy.Policy, ifMatch int64) (response, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return response{}, err
	}
	h := http.Header{}
	if ifMatch > 0 {
		h.Set("If-Match", strconv.Quote(strconv.FormatInt(ifMatch, 10)))
	}
	return c.do(ctx, "PUT", "/api/v1/orgs/"+org+"/policy", h, b)
}

// mustApply applies p on top of version ifMatch and returns the new version.
func (c *client) mustApply(t *testing.T, p policy.Policy, ifMatch int64) int64 {
	t.Helper()
	r, err := c.apply(testContext(t, 30*time.Second), p, ifMatch)
	if err != nil {
		t.Fatalf("apply on %s: %v", c.base, err)
	}
	if r.status != http.StatusOK {
		t.Fatalf("apply on %s: %s", c.base, r)
	}
	var res applyResult
	if err := json.Unmarshal(r.body, &res); err != nil || !res.Applied {
		t.Fatalf("apply on %s: %v %s", c.base, err, r.body)
	}
	return res.Version
}

// policyAllowing is acme's policy with registry access on, listing Docker
// Hub and hosts.
func policyAllowing(hosts ...string) policy.Policy {
	p := policy.Default(org)
	p.RegistryAccess.Enabled = true
	p.RegistryAccess.Registries = []policy.Registry{{Host: policy.DockerHubGroup}}
	for _, h := range hosts {
		p.RegistryAccess.Registries = append(p.RegistryAccess.Registries, policy.Registry{Host: h})
	}
	return p
}

// addMember adds a user with a password to acme and returns a personal
// access token of theirs, asked from base.
func addMember(t *testing.T, owner *client, base, username, role string) string {
	t.Helper()
	pw := username + "-scale-password"
	owner.must(t, http.StatusCreated, "POST", "/api/v1/orgs/"+org+"/members", nil,
		map[string]string{"username": username, "role": role, "password": pw})
	return createToken(t, base, username, pw, map[string]string{"org": org})
}

// createGatewayToken asks for a gateway token as the server admin.
func createGatewayToken(t *testing.T, base string) string {
	t.Helper()
	return createToken(t, base, "admin", adminPassword, map[string]string{"kind": "gateway", "name": "scale test"})
}

func createToken(t *testing.T, base, username, password string, body map[string]string) string {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(testContext(t, 30*time.Second), "POST", base+"/api/v1/tokens", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(username, password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s/api/v1/tokens as %s: %v", base, username, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s/api/v1/tokens as %s: %d %s", base, username, resp.StatusCode, rb)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(rb, &tok); err != nil || tok.Token == "" {
		t.Fatalf("token answer without a token: %v %s", err, rb)
	}
	return tok.Token
}

// snapshotAnswer is what a long-poll of /snapshot returns.
type snapshotAnswer struct {
	Org     string        `json:"org"`
	Version int64         `json:"version"`
	Policy  policy.Policy `json:"policy"`
}

// longPoll asks for a snapshot newer than after, as gateways do; changed
// is false when the wait ran out (304).
func (c *client) longPoll(ctx context.Context, after int64, wait time.Duration) (snap snapshotAnswer, changed bool, err error) {
	path := fmt.Sprintf("/api/v1/orgs/%s/snapshot?after=%d&wait=%s", org, after, wait)
	r, err := c.do(ctx, "GET", path, nil, nil)
	if err != nil {
		return snap, false, err
	}
	switch r.status {
	case http.StatusNotModified:
		return snap, false, nil
	case http.StatusOK:
		if err := json.Unmarshal(r.body, &snap); err != nil {
			return snap, false, fmt.Errorf("decode snapshot: %w", err)
		}
		return snap, true, nil
	}
	return snap, false, fmt.Errorf("long-poll %s: %s", c.base, r)
}

// activityItem is an entry of GET /activity.
type activityItem struct {
	ID      int64           `json:"id"`
	Actor   string          `json:"actor"`
	Kind    string          `json:"kind"`
	Version int64           `json:"version"`
	Diff    json.RawMessage `json:"diff"`
	Summary string          `json:"summary"`
}

// activity returns every entry of the given kind, newest first, following
// the pages.
func (c *client) activity(t *testing.T, kind string) []activityItem {
	t.Helper()
	var all []activityItem
	path := "/api/v1/orgs/" + org + "/activity?limit=500&kind=" + kind
	for range 100 {
		r := c.must(t, http.StatusOK, "GET", path, nil, nil)
		var page struct {
			Items []activityItem `json:"items"`
			Next  string         `json:"next"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatalf("decode activity: %v", err)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all
		}
		path = "/api/v1/orgs/" + org + "/activity?limit=500&kind=" + kind + "&before=" + page.Next
	}
	t.Fatal("activity has more than 100 pages")
	return nil
}

// problemBody is an application/problem+json answer.
type problemBody struct {
	Type    string `json:"type"`
	Status  int    `json:"status"`
	Detail  string `json:"detail"`
	Version int64  `json:"version"`
}

func decodeProblem(r response) (problemBody, error) {
	var p problemBody
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		return p, fmt.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		return p, err
	}
	if p.Status != r.status {
		return p, fmt.Errorf("problem status %d in a %d answer", p.Status, r.status)
	}
	return p, nil
}
