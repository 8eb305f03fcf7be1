package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regward/regward/internal/console"
	"github.com/regward/regward/internal/controlplane"
	"github.com/regward/regward/internal/store"
	"github.com/regward/regward/internal/store/sqlite"
)

const adminPassword = "correct-horse-battery-staple"

// env is regward's API and console on one mux, as `regward serve` wires
// them, over a SQLite store in a temporary directory with org acme.
type env struct {
	t   *testing.T
	srv *httptest.Server
	cp  *controlplane.Server
	st  store.Store
}

type envOptions struct {
	secure    bool
	ttl       time.Duration
	gatewayCA []byte
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "regward.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cpo := controlplane.Options{Store: st}
	if o.gatewayCA != nil {
		cpo.GatewayCA = func() []byte { return o.gatewayCA }
	}
	cp, err := controlplane.New(cpo)
	if err != nil {
		t.Fatal(err)
	}
	if fr, err := controlplane.Bootstrap(ctx, st, cp, "acme", adminPassword); err != nil || !fr.Created {
		t.Fatalf("bootstrap: %+v, %v", fr, err)
	}
	con, err := console.New(console.Options{Server: cp, Secure: o.secure, SessionTTL: o.ttl, Gateway: "gw.acme.test:3128"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	cp.Routes(mux)
	con.Routes(mux)
	runCtx, cancel := context.WithCancel(ctx)
	go cp.Run(runCtx)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.Close(); cancel() })
	return &env{t: t, srv: srv, cp: cp, st: st}
}

// owner is the principal of acme's first owner, for setting things up
// directly through the Server.
func owner() controlplane.Principal {
	return controlplane.Principal{Username: controlplane.AdminUser, Org: "acme", Role: store.RoleOwner, Kind: store.TokenPersonal, ServerAdmin: true}
}

// addMember adds a member with a known password.
func (e *env) addMember(name string, role store.Role) string {
	e.t.Helper()
	pw := name + "-password-1234"
	if _, err := e.cp.AddMember(context.Background(), owner(), "acme", name, role, pw); err != nil {
		e.t.Fatalf("add member %s: %v", name, err)
	}
	return pw
}

// client is a browser-like HTTP client with its own cookie jar that does
// not follow redirects, so tests see them.
type client struct {
	e  *env
	hc *http.Client
}

func (e *env) client() *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return &client{e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type response struct {
	code int
	hdr  http.Header
	body string
}

func (c *client) do(method, path string, form url.Values, hdr ...string) response {
	c.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.e.srv.URL+path, body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{code: resp.StatusCode, hdr: resp.Header, body: string(data)}
}

func (c *client) get(path string) response { return c.do("GET", path, nil) }

// post sends a form as a same-origin browser would.
func (c *client) post(path string, form url.Values) response {
	return c.do("POST", path, form, "Origin", c.e.srv.URL, "Sec-Fetch-Site", "same-origin")
}

func (c *client) signIn(user, password, org string) response {
	c.e.t.Helper()
	r := c.post("/signin", url.Values{"username": {user}, "password": {password}, "org": {org}})
	if r.code != http.StatusSeeOther {
		c.e.t.Fatalf("sign in as %s: %d\n%s", user, r.code, r.body)
	}
	return r
}

func (c *client) cookie() *http.Cookie {
	u, _ := url.Parse(c.e.srv.URL)
	for _, ck := range c.hc.Jar.Cookies(u) {
		if ck.Name == console.CookieName {
			return ck
		}
	}
	return nil
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
