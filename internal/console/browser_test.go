package console_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/regward/regward/internal/console"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write PNG screenshots of every console page to docs/screenshots")

// screenshotDir is docs/screenshots, from this package's directory.
var screenshotDir = filepath.Join("..", "..", "docs", "screenshots")

// chromiumPath finds Debian's chromium (REGWARD_CHROMIUM overrides).
func chromiumPath() (string, error) {
	if p := os.Getenv("REGWARD_CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no chromium found (looked for /usr/bin/chromium, chromium and chromium-browser in PATH; install Debian's chromium package or set REGWARD_CHROMIUM)")
}

// browser is a headless Chromium tab that records what the pages write to
// the console.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	path, err := chromiumPath()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("browser tests must run in CI: %v", err)
		}
		t.Skipf("skipping browser test: %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, base: base}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil { // starts the browser
		t.Fatalf("start chromium %s: %v", path, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// do runs actions with a time limit, so that a page that never shows what
// the test waits for fails the test instead of hanging it.
func (b *browser) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v (page: %s)", step, err, b.location())
	}
}

func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

func (b *browser) open(path string, waitFor string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path), chromedp.WaitVisible(chromedp.CSS(waitFor)))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("read %s: %v (page: %s)", sel, err, b.location())
	}
	return s
}

func evaluate[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// expectNoConsoleErrors fails on any error or exception the pages wrote
// since the last check.
func (b *browser) expectNoConsoleErrors(step string) {
	b.t.Helper()
	time.Sleep(100 * time.Millisecond) // let the last events of the page arrive
	for _, m := range b.takeConsole() {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			b.t.Errorf("%s: console %s (%s)", step, m, m.URL)
		}
	}
}

func (b *browser) takeConsole() []chromedp.ConsoleMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.messages
	b.messages = nil
	return m
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	if !*updateScreenshots {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) sessionCookie() string {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.base + "/"}})
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == console.CookieName {
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax {
				b.t.Errorf("session cookie: httpOnly %v sameSite %q, want true and Lax", c.HTTPOnly, c.SameSite)
			}
			return c.Value
		}
	}
	b.t.Fatal("no session cookie in the browser")
	return ""
}

func (b *browser) signIn(user, password string) {
	b.t.Helper()
	b.open("/signin", "#username")
	b.do("sign in as "+user,
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main"]`)),
	)
}

// TestConsoleInBrowser drives the console in headless Chromium the way an
// owner and then a member would, and takes the screenshots in
// docs/screenshots with -update-screenshots.
func TestConsoleInBrowser(t *testing.T) {
	e := newEnv(t, envOptions{gatewayCA: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")})
	b := newBrowser(t, e.srv.URL)
	ctx := context.Background()
	now := time.Now()
	err := e.st.AppendDecisions(ctx, []store.DecisionRecord{
		{Time: now.Add(-3 * time.Hour), Org: "acme", User: "dev1", Host: "registry-1.docker.io", Port: 443, Action: "pull",
			Image: "docker.io/library/alpine:3.20", Category: "official", Rule: "registryAccess.registries[0]", Allowed: true},
		{Time: now.Add(-2 * time.Hour), Org: "acme", User: "dev1", Host: "registry-1.docker.io", Port: 443, Action: "pull",
			Image: "docker.io/someone/tool:1.0", Category: "community", Rule: "registryAccess.registries[0]", Allowed: true},
		{Time: now.Add(-time.Hour), Org: "acme", User: "dev2", Host: "quay.io", Port: 443, Rule: "registryAccess", Allowed: false,
			Reason: "registry quay.io is not allowed by organization acme; ask an owner to add it to the allowed registries"},
	})
	if err != nil {
		t.Fatal(err)
	}

	// Signed out, the console sends you to sign in.
	b.open("/", "#username")
	if loc := b.location(); !strings.HasSuffix(loc, "/signin") {
		t.Errorf("/ signed out went to %s, want /signin", loc)
	}
	b.screenshot("signin")
	b.signIn("admin", adminPassword)
	b.sessionCookie()
	b.expectNoConsoleErrors("sign in")

	// Registry access: a bad host is refused beside its row.
	b.open("/registry", "#entry-count")
	if got := b.text("#entry-count"); got != "1 of 100 entries" {
		t.Errorf("entry count %q, want \"1 of 100 entries\"", got)
	}
	b.do("review a bad host",
		chromedp.SendKeys(chromedp.ID("host-1"), "not a host!"),
		chromedp.Click(chromedp.ID("review")),
		chromedp.WaitVisible(chromedp.ID("host-1-error")),
	)
	if msg := b.text("#host-1-error"); !strings.Contains(msg, "not a host!") {
		t.Errorf("row error %q does not name the entry", msg)
	}
	b.screenshot("registry-validation")
	b.expectNoConsoleErrors("validation")

	// Fixed, it is reviewed with its diff and impact, then applied.
	b.do("review ghcr.io",
		chromedp.SetValue(chromedp.ID("host-1"), "ghcr.io"),
		chromedp.Click(chromedp.ID("review")),
		chromedp.WaitVisible(chromedp.ID("impact-summary")),
	)
	if diff := b.text("table.diff"); !strings.Contains(diff, "Registry ghcr.io") {
		t.Errorf("review diff does not show ghcr.io:\n%s", diff)
	}
	if s := b.text("#impact-summary"); !strings.Contains(s, "would not have denied any of the 2 requests") {
		t.Errorf("impact summary %q", s)
	}
	b.screenshot("registry-review")
	b.do("apply", chromedp.Click(chromedp.ID("apply")), chromedp.WaitVisible(chromedp.CSS(".notice.ok")))
	if msg := b.text(".notice.ok"); !strings.Contains(msg, "version 2") {
		t.Errorf("after apply: %q", msg)
	}
	rec, err := e.st.GetPolicy(ctx, "acme")
	if err != nil || rec.Version != 2 || len(rec.Policy.RegistryAccess.Registries) != 2 || rec.Policy.RegistryAccess.Registries[1].Host != "ghcr.io" {
		t.Fatalf("policy after apply: %+v, %v", rec, err)
	}
	b.screenshot("registry")
	b.expectNoConsoleErrors("apply registry")

	// The change is in the activity log with its diff.
	b.open("/activity", "#activity-log")
	first := b.text("#activity-log li:first-child")
	if !strings.Contains(first, "Policy applied") || !strings.Contains(first, "Registry ghcr.io") || !strings.Contains(first, "admin") {
		t.Errorf("newest activity entry:\n%s", first)
	}
	b.screenshot("activity")
	b.open("/activity?kind=denials", "#activity-log")
	if got := b.text("#activity-log"); !strings.Contains(got, "quay.io") {
		t.Errorf("denials:\n%s", got)
	}
	b.expectNoConsoleErrors("activity")

	// Image access: restricting community images shows who it would stop.
	b.open("/images", "#images-form")
	b.do("restrict community images",
		chromedp.Click(chromedp.ID("enabled")),
		chromedp.Click(chromedp.ID("communityImages-restricted")),
		chromedp.Click(chromedp.ID("review")),
		chromedp.WaitVisible(chromedp.ID("impact-summary")),
	)
	if s := b.text("#impact-summary"); !strings.Contains(s, "would have denied 1 pull by 1 user") {
		t.Errorf("impact of restricting community images: %q", s)
	}
	b.screenshot("images-review")
	b.do("apply image access", chromedp.Click(chromedp.ID("apply")), chromedp.WaitVisible(chromedp.CSS(".notice.ok")))
	rec, err = e.st.GetPolicy(ctx, "acme")
	if err != nil || !rec.Policy.ImageAccess.Enabled || rec.Policy.ImageAccess.CommunityImages != policy.Restricted {
		t.Fatalf("image access after apply: %+v, %v", rec.Policy.ImageAccess, err)
	}
	b.screenshot("images")
	b.expectNoConsoleErrors("image access")

	// Members: a new member gets a one-time password, shown once.
	b.open("/members", "#members")
	b.do("add alice",
		chromedp.SendKeys(chromedp.ID("new-username"), "alice"),
		chromedp.Click(chromedp.ID("add-member")),
		chromedp.WaitVisible(chromedp.ID("new-password")),
	)
	alicePassword := strings.TrimSpace(b.text("#new-password"))
	if len(alicePassword) < 12 {
		t.Fatalf("one-time password %q", alicePassword)
	}
	if m, err := e.st.GetMember(ctx, "acme", "alice"); err != nil || m.Role != store.RoleMember {
		t.Fatalf("alice after adding: %+v, %v", m, err)
	}
	b.screenshot("members")
	b.expectNoConsoleErrors("members")

	// Tokens: shown once, then listed.
	b.open("/tokens", "#token-name")
	b.do("create a token",
		chromedp.SendKeys(chromedp.ID("token-name"), "ci-runner"),
		chromedp.Click(chromedp.ID("create-token")),
		chromedp.WaitVisible(chromedp.ID("new-token")),
	)
	if tok := b.text("#new-token"); !strings.HasPrefix(tok, "rw_") {
		t.Errorf("new token %q", tok)
	}
	if list := b.text("#tokens"); !strings.Contains(list, "ci-runner") {
		t.Errorf("token list:\n%s", list)
	}
	b.screenshot("tokens")
	b.open("/setup", "#setup-docker")
	if got := b.text("#code-ci"); !strings.Contains(got, "HTTPS_PROXY=http://admin:TOKEN@gw.acme.test:3128") {
		t.Errorf("CI settings:\n%s", got)
	}
	b.screenshot("setup")
	b.expectNoConsoleErrors("tokens and setup")

	// Phone width.
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait))
	for _, page := range []string{"/images", "/members", "/tokens", "/activity", "/setup", "/registry"} {
		b.open(page, "main h1")
		if w := evaluate[int](b, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("%s is %d px wide on a 390 px phone: it scrolls sideways", page, w)
		}
	}
	b.screenshot("registry-phone")
	b.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
	b.expectNoConsoleErrors("phone")

	// CSRF: a form on another origin (same site, another port) posts to the
	// console with the owner's cookie; the console refuses it.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>prize</title><form id="f" method="post" action="%s/members">`+
			`<input name="username" value="mallory"><input name="role" value="owner"></form>`+
			`<script>document.getElementById("f").submit()</script>`, e.srv.URL)
	}))
	defer evil.Close()
	b.do("cross-origin post", chromedp.Navigate(evil.URL), chromedp.WaitVisible(chromedp.CSS(".notice.error")))
	if h := b.text("h1"); h != "Request refused" {
		t.Errorf("cross-origin post answered %q", h)
	}
	if _, err := e.st.GetMember(ctx, "acme", "mallory"); err == nil {
		t.Fatal("a cross-origin form added a member")
	}
	b.takeConsole() // the refusal is a 403, which the browser reports

	// Sign out, and in as the member: everything is read-only.
	b.open("/registry", "#entry-count")
	b.do("sign out", chromedp.Click(chromedp.CSS(`form[action="/signout"] button`)), chromedp.WaitVisible(chromedp.ID("username")))
	b.signIn("alice", alicePassword)
	b.open("/registry", "#entry-count")
	for _, sel := range []string{"#host-0", "#host-1", "#enabled", "#review", `button[name="remove"]`, "#region"} {
		if !evaluate[bool](b, fmt.Sprintf(`document.querySelector(%q).matches(":disabled")`, sel)) {
			t.Errorf("member: %s is not disabled on /registry", sel)
		}
	}
	if note := b.text(".notice.readonly"); !strings.Contains(note, "only owners can change it") {
		t.Errorf("read-only note %q", note)
	}
	b.screenshot("member-readonly")
	for page, sel := range map[string]string{"/images": "#review", "/members": "#add-member", "/tokens": "#create-token"} {
		b.open(page, sel)
		if !evaluate[bool](b, fmt.Sprintf(`document.querySelector(%q).matches(":disabled")`, sel)) {
			t.Errorf("member: %s on %s is not disabled", sel, page)
		}
	}
	b.expectNoConsoleErrors("member pages")

	// The server refuses the member's writes, whatever the HTML shows.
	status := evaluate[int](b, `fetch("/registry", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"},
		body: "version=3&enabled=on&host=docker-hub&access=pull-push&description=&host=evil.example&access=pull-push&description=&action=review"}).then(r => r.status)`)
	if status != http.StatusForbidden {
		t.Errorf("member's forged POST /registry from the page: %d, want 403", status)
	}
	b.takeConsole()
	cookie := b.sessionCookie()
	draft := rec.Policy.Clone()
	draft.RegistryAccess.Enabled = false
	for path, form := range map[string]url.Values{
		"/review":  {"from": {"registry"}, "version": {"3"}, "action": {"apply"}, "draft": {mustJSON(t, draft)}},
		"/members": {"username": {"mallory"}, "role": {"owner"}},
		"/tokens":  {"name": {"x"}, "user": {"alice"}, "expires": {"never"}},
	} {
		req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", console.CookieName+"="+cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("member's forged POST %s with the session cookie: %d, want 403", path, resp.StatusCode)
		}
	}
	if rec, err := e.st.GetPolicy(ctx, "acme"); err != nil || rec.Version != 3 || !rec.Policy.RegistryAccess.Enabled {
		t.Fatalf("the member's forged apply changed the policy: version %d, %v", rec.Version, err)
	}
}
