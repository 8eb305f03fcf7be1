package console_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regward/regward/internal/console"
	"github.com/regward/regward/internal/controlplane"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// hidden reads the value of a hidden input from a page.
func hidden(t *testing.T, page, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + regexp.QuoteMeta(name) + `" value="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no hidden field %q in the page", name)
	}
	return html.UnescapeString(m[1])
}

func setCookie(t *testing.T, r response) *http.Cookie {
	t.Helper()
	for _, line := range r.hdr.Values("Set-Cookie") {
		ck, err := http.ParseSetCookie(line)
		if err == nil && ck.Name == console.CookieName {
			return ck
		}
	}
	t.Fatalf("no %s cookie set; headers %v", console.CookieName, r.hdr)
	return nil
}

func TestNewChecksOptions(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name string
		o    console.Options
		want string
	}{
		{"no server", console.Options{}, "no control plane server"},
		{"negative ttl", console.Options{Server: e.cp, SessionTTL: -time.Second}, "negative"},
		{"bad gateway", console.Options{Server: e.cp, Gateway: "gw.example"}, "want host:port"},
	} {
		if _, err := console.New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestSessionCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			e := newEnv(t, envOptions{secure: secure, ttl: 2 * time.Hour})
			c := e.client()
			r := c.post("/signin", url.Values{"username": {"admin"}, "password": {adminPassword}})
			if r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/registry" {
				t.Fatalf("sign in: %d to %q", r.code, r.hdr.Get("Location"))
			}
			ck := setCookie(t, r)
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure != secure {
				t.Errorf("cookie attributes: HttpOnly %v SameSite %v Path %q Secure %v", ck.HttpOnly, ck.SameSite, ck.Path, ck.Secure)
			}
			if ck.MaxAge != 7200 {
				t.Errorf("cookie Max-Age %d, want 7200 (the session lifetime)", ck.MaxAge)
			}
			p, err := e.cp.AuthenticateToken(context.Background(), ck.Value)
			if err != nil || p.Kind != store.TokenSession || p.Username != "admin" || p.Org != "acme" {
				t.Fatalf("the cookie is not an acme session token of admin: %+v, %v", p, err)
			}
			tok, err := e.st.GetToken(context.Background(), p.TokenID)
			if err != nil || tok.ExpiresAt == nil || tok.ExpiresAt.Sub(time.Now()) > 2*time.Hour || tok.ExpiresAt.Sub(time.Now()) < 119*time.Minute {
				t.Errorf("session token expiry %v, want in 2 h", tok.ExpiresAt)
			}
		})
	}
}

func TestSessionRotationAndSignOut(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client()
	c.signIn("admin", adminPassword, "")
	first := c.cookie().Value
	c.signIn("admin", adminPassword, "acme")
	second := c.cookie().Value
	if first == second {
		t.Fatal("signing in again kept the same session token")
	}
	if _, err := e.cp.AuthenticateToken(context.Background(), first); !controlplane.IsBadToken(err) {
		t.Errorf("the session replaced by a new sign-in still works: %v", err)
	}
	old := e.client()
	old.hc.Jar.SetCookies(mustURL(t, e.srv.URL), []*http.Cookie{{Name: console.CookieName, Value: first}})
	if r := old.get("/registry"); r.code != http.StatusSeeOther || !strings.HasPrefix(r.hdr.Get("Location"), "/signin?next=%2Fregistry") {
		t.Errorf("old session: %d to %q, want a redirect to sign in", r.code, r.hdr.Get("Location"))
	}

	r := c.post("/signout", url.Values{})
	if r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/signin?signedout=1" {
		t.Fatalf("sign out: %d to %q", r.code, r.hdr.Get("Location"))
	}
	if ck := setCookie(t, r); ck.MaxAge >= 0 || ck.Value != "" {
		t.Errorf("sign-out does not clear the cookie: %+v", ck)
	}
	if _, err := e.cp.AuthenticateToken(context.Background(), second); !controlplane.IsBadToken(err) {
		t.Errorf("the session still works after sign-out: %v", err)
	}
	page, err := e.cp.Activity(context.Background(), owner(), "acme", controlplane.ActivityQuery{Kinds: []string{store.KindSignIn}})
	if err != nil || len(page.Items) != 2 {
		t.Errorf("sign-ins on record: %+v, %v", page.Items, err)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestSignInProblems(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addMember("alice", store.RoleMember)
	c := e.client()
	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"wrong password", url.Values{"username": {"admin"}, "password": {"nope"}, "org": {"acme"}}, "Wrong username or password."},
		{"unknown user", url.Values{"username": {"nobody"}, "password": {"nope"}}, "Wrong username or password."},
		{"empty", url.Values{"username": {""}, "password": {""}}, "Enter your username and password."},
		{"not a member", url.Values{"username": {"alice"}, "password": {"alice-password-1234"}, "org": {"other"}}, "You are not a member of organization other."},
	} {
		r := c.post("/signin", tc.form)
		if r.code != http.StatusOK || !strings.Contains(r.body, html.EscapeString(tc.want)) || c.cookie() != nil {
			t.Errorf("%s: %d, cookie %v, body lacks %q", tc.name, r.code, c.cookie(), tc.want)
		}
	}
	page, err := e.cp.Activity(context.Background(), owner(), "acme", controlplane.ActivityQuery{Kinds: []string{store.KindSignInFailed}})
	if err != nil || len(page.Items) != 1 || page.Items[0].Actor != "admin" {
		t.Errorf("failed sign-in on record: %+v, %v", page.Items, err)
	}
	// After sign-in, only local paths are followed.
	for next, want := range map[string]string{"/activity?kind=denials": "/activity?kind=denials", "//evil.example/x": "/registry",
		"https://evil.example/": "/registry", "/\\evil.example": "/registry"} {
		r := c.post("/signin", url.Values{"username": {"alice"}, "password": {"alice-password-1234"}, "next": {next}})
		if r.code != http.StatusSeeOther || r.hdr.Get("Location") != want {
			t.Errorf("next=%q: %d to %q, want %q", next, r.code, r.hdr.Get("Location"), want)
		}
	}
}

func TestSignedOutAndRoutesBesideTheAPI(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client()
	if r := c.get("/"); r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/signin" {
		t.Errorf("GET / signed out: %d to %q", r.code, r.hdr.Get("Location"))
	}
	if r := c.get("/members"); r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/signin?next=%2Fmembers" {
		t.Errorf("GET /members signed out: %d to %q", r.code, r.hdr.Get("Location"))
	}
	if r := c.post("/members", url.Values{"username": {"x"}}); r.code != http.StatusUnauthorized || !strings.Contains(r.body, "Your session has ended") {
		t.Errorf("POST /members signed out: %d", r.code)
	}
	// The API still answers its own paths.
	if r := c.get("/healthz"); r.code != http.StatusOK || !strings.Contains(r.body, `"ok"`) {
		t.Errorf("/healthz: %d %s", r.code, r.body)
	}
	if r := c.get("/api/v1/whoami"); r.code != http.StatusUnauthorized || !strings.HasPrefix(r.hdr.Get("Content-Type"), "application/problem+json") {
		t.Errorf("/api/v1/whoami: %d %s", r.code, r.hdr.Get("Content-Type"))
	}
	r := c.get("/static/style.css")
	if r.code != http.StatusOK || !strings.HasPrefix(r.hdr.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: %d %s", r.code, r.hdr.Get("Content-Type"))
	}
	r = c.get("/signin")
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
		if r.hdr.Get(h) == "" {
			t.Errorf("sign-in page lacks %s", h)
		}
	}
	// An access token is not a console session.
	tok, err := e.cp.IssueToken(context.Background(), "admin", "admin", "acme", store.TokenPersonal, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	c.hc.Jar.SetCookies(mustURL(t, e.srv.URL), []*http.Cookie{{Name: console.CookieName, Value: tok.Token}})
	if r := c.get("/registry"); r.code != http.StatusSeeOther {
		t.Errorf("a personal access token as the cookie: %d, want a redirect to sign in", r.code)
	}
}

func TestCrossOriginPostsAreRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client()
	c.signIn("admin", adminPassword, "")
	form := url.Values{"username": {"mallory"}, "role": {"owner"}}
	for _, hdr := range [][]string{
		{"Origin", "http://evil.example"},
		{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"},
		{"Sec-Fetch-Site", "same-site", "Origin", "http://other.acme.test"},
	} {
		r := c.do("POST", "/members", form, hdr...)
		if r.code != http.StatusForbidden || !strings.Contains(r.body, "came from another site") {
			t.Errorf("POST /members with %v: %d, want 403", hdr, r.code)
		}
	}
	if _, err := e.st.GetMember(context.Background(), "acme", "mallory"); err == nil {
		t.Fatal("a cross-origin POST added a member")
	}
	// Signing someone in to an attacker's account is refused the same way.
	r := e.client().do("POST", "/signin", url.Values{"username": {"admin"}, "password": {adminPassword}}, "Origin", "http://evil.example")
	if r.code != http.StatusForbidden {
		t.Errorf("cross-origin sign-in: %d, want 403", r.code)
	}
	// The same form from the console itself works.
	if r := c.post("/members", form); r.code != http.StatusOK || !strings.Contains(r.body, "Added mallory as owner.") {
		t.Fatalf("same-origin POST /members: %d", r.code)
	}
}

func TestMembersCannotChangeAnything(t *testing.T) {
	e := newEnv(t, envOptions{})
	pw := e.addMember("alice", store.RoleMember)
	ctx := context.Background()
	adminTok, err := e.cp.IssueToken(ctx, "admin", "admin", "acme", store.TokenPersonal, "ci", 0)
	if err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.signIn("alice", pw, "")
	r := c.get("/registry")
	if r.code != http.StatusOK || !strings.Contains(r.body, `<fieldset class="plain" disabled>`) || !strings.Contains(r.body, "only owners can change it") {
		t.Errorf("member's registry page is not read-only: %d", r.code)
	}
	rec, _ := e.st.GetPolicy(ctx, "acme")
	draft := rec.Policy.Clone()
	draft.RegistryAccess.Enabled = false
	v := fmt.Sprint(rec.Version)
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/registry", url.Values{"version": {v}, "host": {"evil.example"}, "access": {"pull-push"}, "description": {""}, "action": {"review"}}},
		{"/registry", url.Values{"version": {v}, "host": {"docker-hub"}, "access": {"pull-push"}, "description": {""}, "preset": {"ghcr"}}},
		{"/review", url.Values{"from": {"images"}, "version": {v}, "action": {"edit"}, "draft": {mustJSON(t, draft)}}},
		{"/review", url.Values{"from": {"registry"}, "version": {v}, "action": {"apply"}, "draft": {mustJSON(t, draft)}}},
		{"/images", url.Values{"version": {v}, "officialImages": {"allowed"}, "verifiedPublisherImages": {"allowed"},
			"sponsoredOSSImages": {"allowed"}, "communityImages": {"allowed"}}},
		{"/catalog/verified-publishers", url.Values{"scope": {"org"}, "namespaces": {"evil"}}},
		{"/catalog/sponsored-oss", url.Values{"scope": {"server"}, "namespaces": {"evil"}}},
		{"/members", url.Values{"username": {"mallory"}, "role": {"owner"}}},
		{"/members/alice/role", url.Values{"role": {"owner"}}},
		{"/members/admin/remove", url.Values{}},
		{"/tokens", url.Values{"name": {"x"}, "user": {"alice"}, "expires": {"never"}}},
		{"/tokens/" + adminTok.ID + "/revoke", url.Values{}},
	} {
		if r := c.post(tc.path, tc.form); r.code != http.StatusForbidden {
			t.Errorf("member POST %s: %d, want 403\n%s", tc.path, r.code, r.body)
		}
	}
	if after, _ := e.st.GetPolicy(ctx, "acme"); after.Version != rec.Version {
		t.Errorf("policy version went from %d to %d", rec.Version, after.Version)
	}
	if m, _ := e.st.GetMember(ctx, "acme", "alice"); m.Role != store.RoleMember {
		t.Errorf("alice is now %s", m.Role)
	}
	if _, err := e.st.GetMember(ctx, "acme", "admin"); err != nil {
		t.Errorf("admin was removed: %v", err)
	}
	if tok, _ := e.st.GetToken(ctx, adminTok.ID); tok.RevokedAt != nil {
		t.Error("the member revoked the owner's token")
	}
	if cat, _ := e.st.GetCatalog(ctx, "acme"); len(cat.VerifiedPublishers) != 0 {
		t.Errorf("the member changed the catalog: %v", cat.VerifiedPublishers)
	}
	// Members may still read every page and preview.
	for _, p := range []string{"/images", "/members", "/tokens", "/activity", "/setup", "/setup/registry.json"} {
		if r := c.get(p); r.code != http.StatusOK {
			t.Errorf("member GET %s: %d", p, r.code)
		}
	}
}

func TestRegistryEditor(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client()
	c.signIn("admin", adminPassword, "")
	r := c.get("/registry")
	if !strings.Contains(r.body, "1 of 100 entries") {
		t.Fatalf("entry count missing:\n%s", r.body)
	}
	rows := func(hosts ...string) url.Values {
		f := url.Values{"version": {"1"}, "enabled": {"on"}}
		for _, h := range hosts {
			f.Add("host", h)
			f.Add("access", "pull-push")
			f.Add("description", "")
		}
		return f
	}

	// Errors show beside their rows; blank rows are dropped first.
	f := rows("docker-hub", "", "not a host!", "ghcr.io", "GHCR.io")
	f.Set("action", "review")
	r = c.post("/registry", f)
	if r.code != http.StatusOK || !strings.Contains(r.body, `id="host-1-error"`) || !strings.Contains(r.body, html.EscapeString(`"not a host!"`)) {
		t.Fatalf("invalid host: %d\n%s", r.code, r.body)
	}
	if !strings.Contains(r.body, `id="host-3-error"`) || !strings.Contains(r.body, "duplicates") {
		t.Errorf("the duplicate entry is not flagged on its row")
	}
	if !strings.Contains(r.body, "The draft has 2 problems; nothing was applied.") {
		t.Errorf("no summary of the problems")
	}

	// Remove a row, add a row, add a preset: the draft changes, nothing is applied.
	f = rows("docker-hub", "not a host!", "ghcr.io")
	f.Set("remove", "1")
	r = c.post("/registry", f)
	if strings.Contains(r.body, "not a host!") || !strings.Contains(r.body, "2 of 100 entries") {
		t.Errorf("remove did not drop the row")
	}
	f = rows("docker-hub")
	f.Set("action", "add")
	f.Set("blank", "1")
	if r = c.post("/registry", f); strings.Count(r.body, `name="host"`) != 3 {
		t.Errorf("add row: %d host fields, want 3", strings.Count(r.body, `name="host"`))
	}
	f = rows("docker-hub")
	f.Set("preset", "ecr")
	f.Set("region", "eu-west-1")
	r = c.post("/registry", f)
	for _, h := range []string{"*.dkr.ecr.eu-west-1.amazonaws.com", "prod-eu-west-1-starport-layer-bucket.s3.eu-west-1.amazonaws.com"} {
		if !strings.Contains(r.body, `value="`+h+`"`) {
			t.Errorf("ECR preset did not add %s", h)
		}
	}
	if !strings.Contains(r.body, "Amazon ECR: added 3 entries to the draft") {
		t.Errorf("preset flash missing")
	}
	f.Set("region", "eu west")
	if r = c.post("/registry", f); !strings.Contains(r.body, html.EscapeString(`AWS region "eu west": use a region name`)) || strings.Contains(r.body, `value="*.dkr.ecr`) {
		t.Errorf("a bad region is not refused")
	}
	if rec, _ := e.st.GetPolicy(context.Background(), "acme"); rec.Version != 1 {
		t.Fatalf("editing the draft applied it: version %d", rec.Version)
	}

	// Review shows the diff and the impact; apply makes version 2.
	f = rows("docker-hub", "ghcr.io")
	f.Set("action", "review")
	r = c.post("/registry", f)
	if !strings.Contains(r.body, "Registry ghcr.io") || !strings.Contains(r.body, `id="impact-summary"`) {
		t.Fatalf("review page:\n%s", r.body)
	}
	draft := hidden(t, r.body, "draft")
	if _, err := policy.Decode([]byte(draft)); err != nil {
		t.Fatalf("the review carries a draft that does not decode: %v\n%s", err, draft)
	}
	apply := url.Values{"from": {"registry"}, "version": {"1"}, "action": {"apply"}, "draft": {draft}}
	r = c.post("/review", apply)
	if r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/registry?applied=2" {
		t.Fatalf("apply: %d to %q\n%s", r.code, r.hdr.Get("Location"), r.body)
	}
	if r = c.get("/registry?applied=2"); !strings.Contains(r.body, "the policy is now version 2") {
		t.Errorf("no confirmation after apply")
	}

	// The same reviewed draft again, from version 1: a conflict, with the
	// draft kept and the newer version to review against.
	r = c.post("/review", apply)
	if r.code != http.StatusOK || !strings.Contains(r.body, "Someone else changed the policy meanwhile (it is now version 2)") {
		t.Fatalf("stale apply: %d\n%s", r.code, r.body)
	}
	if v := hidden(t, r.body, "version"); v != "2" {
		t.Errorf("after a conflict the editor holds version %s, want 2", v)
	}
	// Back to editing keeps the draft.
	r = c.post("/review", url.Values{"from": {"registry"}, "version": {"2"}, "action": {"edit"}, "draft": {draft}})
	if !strings.Contains(r.body, `value="ghcr.io"`) {
		t.Errorf("back to editing lost the draft")
	}
	// A tampered draft is refused with a message.
	r = c.post("/review", url.Values{"from": {"registry"}, "version": {"2"}, "action": {"apply"}, "draft": {`{"org":"acme"}`}})
	if r.code != http.StatusBadRequest || !strings.Contains(r.body, "could not be read") {
		t.Errorf("tampered draft: %d", r.code)
	}
}

func TestExplicitAccessIsNotAChange(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	p := policy.Default("acme")
	p.RegistryAccess.Registries = append(p.RegistryAccess.Registries,
		policy.Registry{Host: "ghcr.io", Access: policy.AccessPullPush}, policy.Registry{Host: "mirror.acme.test", Access: policy.AccessPull})
	if _, err := e.cp.ApplyPolicy(ctx, owner(), "acme", p, 1, false); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.signIn("admin", adminPassword, "")
	f := url.Values{"version": {"2"}, "enabled": {"on"}, "action": {"review"},
		"host": {"docker-hub", "ghcr.io", "mirror.acme.test"}, "access": {"pull-push", "pull-push", "pull"}, "description": {"", "", ""}}
	r := c.post("/registry", f)
	if !strings.Contains(r.body, "No changes: the draft is the same as version 2.") {
		t.Errorf("an untouched list shows changes:\n%s", r.body)
	}
}

func TestImageAccessEditorAndCatalog(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client()
	c.signIn("admin", adminPassword, "")
	f := url.Values{"version": {"1"}, "enabled": {"on"}, "officialImages": {"allowed"}, "verifiedPublisherImages": {"allowed"},
		"sponsoredOSSImages": {"restricted"}, "communityImages": {"restricted"},
		"orgNamespaces": {"acme\n\nnot/a/namespace\n"}, "repositoryAllowlist": {"bitnami/redis"}, "pushOnlyToOrgNamespaces": {"on"}}
	r := c.post("/images", f)
	if r.code != http.StatusOK || !strings.Contains(r.body, "Line 2: ") || !strings.Contains(r.body, "not/a/namespace") {
		t.Fatalf("invalid namespace: %d\n%s", r.code, r.body)
	}
	f.Set("orgNamespaces", "acme\nacme-ci")
	r = c.post("/images", f)
	for _, want := range []string{"Image access", "Community images", "Organization namespaces", "acme, acme-ci", "Push only to organization namespaces"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("image access review lacks %q", want)
		}
	}
	r = c.post("/review", url.Values{"from": {"images"}, "version": {"1"}, "action": {"apply"}, "draft": {hidden(t, r.body, "draft")}})
	if r.code != http.StatusSeeOther || r.hdr.Get("Location") != "/images?applied=2" {
		t.Fatalf("apply image access: %d %q", r.code, r.hdr.Get("Location"))
	}
	rec, _ := e.st.GetPolicy(context.Background(), "acme")
	ia := rec.Policy.ImageAccess
	if !ia.Enabled || ia.SponsoredOSSImages != policy.Restricted || len(ia.OrgNamespaces) != 2 || !rec.Policy.NamespaceAccess.PushOnlyToOrgNamespaces {
		t.Errorf("applied image access: %+v %+v", ia, rec.Policy.NamespaceAccess)
	}
	if !rec.Policy.RegistryAccess.Enabled || len(rec.Policy.RegistryAccess.Registries) != 1 {
		t.Errorf("the image access page changed registry access: %+v", rec.Policy.RegistryAccess)
	}

	// The org's own namespace list, then the server-wide one (admin is a server admin).
	r = c.post("/catalog/verified-publishers", url.Values{"scope": {"org"}, "namespaces": {"acmepartner\n"}})
	if r.code != http.StatusSeeOther {
		t.Fatalf("save org list: %d\n%s", r.code, r.body)
	}
	if r = c.get(r.hdr.Get("Location")); !strings.Contains(r.body, "Saved the verified publisher list.") || !strings.Contains(r.body, "Added by acme (1)") {
		t.Errorf("after saving the org list:\n%s", r.body)
	}
	r = c.post("/catalog/sponsored-oss", url.Values{"scope": {"org"}, "namespaces": {"Bad Name"}})
	if r.code != http.StatusOK || !strings.Contains(r.body, "was not saved") || !strings.Contains(r.body, "Bad Name") {
		t.Errorf("bad namespace: %d", r.code)
	}
	r = c.post("/catalog/sponsored-oss", url.Values{"scope": {"server"}, "namespaces": {"cncf\nbitnami"}})
	if r.code != http.StatusSeeOther {
		t.Fatalf("save server list: %d\n%s", r.code, r.body)
	}
	def, _ := e.st.GetCatalog(context.Background(), store.ServerScope)
	if strings.Join(def.SponsoredOSS, ",") != "bitnami,cncf" {
		t.Errorf("server sponsored OSS list: %v", def.SponsoredOSS)
	}
}

func TestMembersPage(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client()
	c.signIn("admin", adminPassword, "")
	r := c.post("/members", url.Values{"username": {"bob"}, "role": {"member"}})
	m := regexp.MustCompile(`<code id="new-password">([^<]+)</code>`).FindStringSubmatch(r.body)
	if r.code != http.StatusOK || m == nil {
		t.Fatalf("add bob: %d\n%s", r.code, r.body)
	}
	bob := e.client()
	bob.signIn("bob", m[1], "acme")
	if r = c.get("/members"); strings.Contains(r.body, m[1]) {
		t.Error("the one-time password is shown again")
	}
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"username": {"bob"}, "role": {"member"}}, "already"},
		{url.Values{"username": {"Bad Name"}, "role": {"member"}}, "lowercase"},
		{url.Values{"username": {"carol"}, "role": {"admin"}}, "use owner or member"},
	} {
		if r = c.post("/members", tc.form); r.code != http.StatusOK || !strings.Contains(r.body, "The member was not added") || !strings.Contains(r.body, tc.want) {
			t.Errorf("add %v: %d, want a message with %q", tc.form, r.code, tc.want)
		}
	}
	if r = c.post("/members/admin/role", url.Values{"role": {"member"}}); !strings.Contains(r.body, "last owner") {
		t.Errorf("demoting the last owner: %d", r.code)
	}
	r = c.post("/members/bob/role", url.Values{"role": {"owner"}})
	if r.code != http.StatusSeeOther {
		t.Fatalf("make bob owner: %d", r.code)
	}
	if r = c.get(r.hdr.Get("Location")); !strings.Contains(r.body, "bob is now owner.") {
		t.Error("no confirmation of the role change")
	}
	r = c.post("/members/bob/remove", url.Values{})
	if r.code != http.StatusSeeOther {
		t.Fatalf("remove bob: %d", r.code)
	}
	if r = c.get(r.hdr.Get("Location")); !strings.Contains(r.body, "Removed bob") {
		t.Error("no confirmation of the removal")
	}
	if r = bob.get("/registry"); r.code != http.StatusSeeOther {
		t.Errorf("a removed member's session still works: %d", r.code)
	}
	// A crafted confirmation link does not claim what did not happen.
	if r = c.get("/members?removed=admin"); strings.Contains(r.body, "Removed admin") {
		t.Error("the page confirms a removal that did not happen")
	}
}

func TestTokensPage(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.addMember("ci-bot", store.RoleMember)
	c := e.client()
	c.signIn("admin", adminPassword, "")
	r := c.post("/tokens", url.Values{"name": {"pipeline"}, "user": {"ci-bot"}, "expires": {"30d"}})
	m := regexp.MustCompile(`<code id="new-token">(rw_[^<]+)</code>`).FindStringSubmatch(r.body)
	if r.code != http.StatusOK || m == nil {
		t.Fatalf("create token: %d\n%s", r.code, r.body)
	}
	p, err := e.cp.AuthenticateToken(context.Background(), m[1])
	if err != nil || p.Username != "ci-bot" || p.Kind != store.TokenPersonal || p.Org != "acme" {
		t.Fatalf("created token: %+v, %v", p, err)
	}
	tok, _ := e.st.GetToken(context.Background(), p.TokenID)
	if tok.ExpiresAt == nil || time.Until(*tok.ExpiresAt) < 29*24*time.Hour {
		t.Errorf("token expiry %v, want in 30 days", tok.ExpiresAt)
	}
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"name": {"x"}, "user": {"nobody"}, "expires": {"never"}}, "nobody is not a member of acme"},
		{url.Values{"name": {"x"}, "user": {"ci-bot"}, "expires": {"forever"}}, "choose one of the listed ones"},
		{url.Values{"name": {strings.Repeat("n", 101)}, "user": {"ci-bot"}, "expires": {"never"}}, "at most 100 characters"},
	} {
		if r = c.post("/tokens", tc.form); !strings.Contains(r.body, "The token was not created") || !strings.Contains(r.body, html.EscapeString(tc.want)) {
			t.Errorf("create %v: want a message with %q", tc.form, tc.want)
		}
	}
	r = c.post("/tokens/"+p.TokenID+"/revoke", url.Values{})
	if r.code != http.StatusSeeOther {
		t.Fatalf("revoke: %d", r.code)
	}
	if r = c.get(r.hdr.Get("Location")); !strings.Contains(r.body, "Revoked token "+p.TokenID) || !strings.Contains(r.body, "badge-revoked") {
		t.Error("the revoked token is not shown as revoked")
	}
	if _, err := e.cp.AuthenticateToken(context.Background(), m[1]); !controlplane.IsBadToken(err) {
		t.Errorf("the revoked token still works: %v", err)
	}
	if r = c.post("/tokens/nosuchtoken/revoke", url.Values{}); r.code != http.StatusNotFound {
		t.Errorf("revoke an unknown token: %d", r.code)
	}
}

func TestSwitchOrg(t *testing.T) {
	e := newEnv(t, envOptions{})
	if err := e.cp.CreateOrg(context.Background(), owner(), "beta"); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.signIn("admin", adminPassword, "")
	before := c.cookie().Value
	r := c.get("/registry")
	if !strings.Contains(r.body, `<option value="beta">beta</option>`) {
		t.Fatalf("no organization switch for a user in two orgs")
	}
	if r = c.post("/switch-org", url.Values{"org": {"beta"}}); r.code != http.StatusSeeOther {
		t.Fatalf("switch: %d", r.code)
	}
	p, err := e.cp.AuthenticateToken(context.Background(), c.cookie().Value)
	if err != nil || p.Org != "beta" {
		t.Fatalf("session after switching: %+v, %v", p, err)
	}
	if _, err := e.cp.AuthenticateToken(context.Background(), before); !controlplane.IsBadToken(err) {
		t.Errorf("the acme session survived the switch: %v", err)
	}
	if r = c.post("/switch-org", url.Values{"org": {"gamma"}}); r.code != http.StatusForbidden {
		t.Errorf("switch to an org one is not in: %d", r.code)
	}
}

func TestActivityPage(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	for i := range 60 {
		err := e.st.AppendActivity(ctx, store.Activity{Org: "acme", Time: time.Now(), Actor: "mallory", Kind: store.KindSignInFailed,
			Target: "mallory", Summary: fmt.Sprintf("failed sign-in %d", i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := e.st.AppendDecisions(ctx, []store.DecisionRecord{
		{Time: time.Now(), Org: "acme", User: "dev", Host: "quay.io", Port: 443, Rule: "registryAccess", Allowed: false, Reason: "=HYPERLINK(\"http://evil\")"},
		{Time: time.Now(), Org: "acme", User: "dev", Host: "ghcr.io", Port: 443, Rule: "registryAccess", Allowed: false, Reason: "ghcr denied"},
		{Time: time.Now(), Org: "acme", User: "dev", Host: "pkg-containers.githubusercontent.com", Port: 443, Rule: "registryAccess", Allowed: false, Reason: "blob denied"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.signIn("admin", adminPassword, "")

	r := c.get("/activity?kind=signins")
	if strings.Count(r.body, `class="entry `) != 50 {
		t.Errorf("first page: %d entries, want 50", strings.Count(r.body, `class="entry `))
	}
	older := regexp.MustCompile(`href="(/activity\?[^"]*before=[0-9]+[^"]*)" rel="next"`).FindStringSubmatch(r.body)
	if older == nil {
		t.Fatalf("no link to older entries")
	}
	r = c.get(html.UnescapeString(older[1]))
	if n := strings.Count(r.body, `class="entry `); n != 11 { // 60 failures and the owner's sign-in
		t.Errorf("second page: %d entries, want 11", n)
	}

	r = c.get("/activity?host=quay.io")
	if !strings.Contains(r.body, "HYPERLINK") || strings.Contains(r.body, "ghcr denied") {
		t.Errorf("host filter on denials:\n%s", r.body)
	}
	r = c.get("/activity?kind=denials")
	if !strings.Contains(r.body, "pkg-containers.githubusercontent.com serves layer downloads for GitHub Container Registry") {
		t.Errorf("a denied redirect host is not explained:\n%s", r.body)
	}
	if strings.Count(r.body, "serves layer downloads") != 1 {
		t.Errorf("registries themselves are explained as redirect hosts")
	}
	for q, want := range map[string]string{
		"kind=policy&host=quay.io": "the host filter applies to denials only",
		"since=yesterday":          "is not a time such as",
		"kind=everything":          "is not one of the listed kinds",
		"before=x":                 "is not a cursor",
	} {
		if r = c.get("/activity?" + q); !strings.Contains(r.body, html.EscapeString(want)) {
			t.Errorf("?%s: no message %q", q, want)
		}
	}
	future := time.Now().UTC().Add(time.Hour).Format("2006-01-02T15:04")
	if r = c.get("/activity?since=" + future); !strings.Contains(r.body, "Nothing matches these filters.") {
		t.Errorf("a since in the future still lists entries")
	}

	r = c.get("/activity/export?format=csv&kind=denials")
	if r.code != http.StatusOK || !strings.HasPrefix(r.hdr.Get("Content-Type"), "text/csv") || !strings.Contains(r.hdr.Get("Content-Disposition"), "attachment") {
		t.Fatalf("CSV export: %d %v", r.code, r.hdr)
	}
	recs, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 4 || recs[0][0] != "id" {
		t.Fatalf("CSV: %v %v", recs, err)
	}
	for _, rec := range recs[1:] {
		if strings.HasPrefix(rec[5], "=") {
			t.Errorf("a CSV cell starts with =: %q", rec[5])
		}
	}
	r = c.get("/activity/export?format=json&kind=signins")
	var out struct {
		Org   string                      `json:"org"`
		Items []controlplane.ActivityItem `json:"items"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || out.Org != "acme" || len(out.Items) != 61 {
		t.Fatalf("JSON export: %d items, %v", len(out.Items), err)
	}
	if r = c.get("/activity/export?format=xml"); r.code != http.StatusBadRequest {
		t.Errorf("export format xml: %d", r.code)
	}
}

func TestSetupDownloads(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	e := newEnv(t, envOptions{gatewayCA: ca})
	c := e.client()
	c.signIn("admin", adminPassword, "")
	r := c.get("/setup")
	for _, want := range []string{"http://admin:TOKEN@gw.acme.test:3128", `"proxies"`, "HTTPS_PROXY=http://admin:TOKEN@gw.acme.test:3128",
		"/usr/share/docker-desktop/registry/registry.json", `href="/setup/gateway-ca.pem"`} {
		if !strings.Contains(r.body, html.EscapeString(want)) && !strings.Contains(r.body, want) {
			t.Errorf("setup page lacks %q", want)
		}
	}
	if strings.Contains(r.body, "rw_") {
		t.Error("the setup page shows a real token")
	}
	r = c.get("/setup/registry.json")
	var rj controlplane.RegistryJSON
	if err := json.Unmarshal([]byte(r.body), &rj); err != nil || len(rj.AllowedOrgs) != 1 || rj.AllowedOrgs[0] != "acme" {
		t.Errorf("registry.json: %s %v", r.body, err)
	}
	if r = c.get("/setup/gateway-ca.pem"); r.body != string(ca) || r.hdr.Get("Content-Type") != "application/x-pem-file" {
		t.Errorf("gateway CA: %q %s", r.body, r.hdr.Get("Content-Type"))
	}

	noCA := newEnv(t, envOptions{})
	c = noCA.client()
	c.signIn("admin", adminPassword, "")
	if r = c.get("/setup/gateway-ca.pem"); r.code != http.StatusNotFound {
		t.Errorf("gateway CA without one: %d", r.code)
	}
	if r = c.get("/setup"); strings.Contains(r.body, `href="/setup/gateway-ca.pem"`) {
		t.Error("the setup page links a CA that does not exist")
	}
}
