package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/regward/regward/internal/controlplane"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// DefaultSessionTTL is how long a console sign-in lasts.
const DefaultSessionTTL = 12 * time.Hour

// formAgain is the status of a form shown again with a problem the user
// can correct (a bad field, a conflict, a wrong password): the page is what
// a person reads, and browsers report every 4xx page as a console error.
// Refusals (403), missing things (404) and failures keep their status.
const formAgain = http.StatusOK

// maxForm bounds a form body; the largest is a registry list at a raised
// entry limit, which a JSON draft repeats once.
const maxForm = 4 << 20

// Options configure a Console.
type Options struct {
	Server *controlplane.Server
	Logger *slog.Logger
	// Secure marks the session cookie Secure: set it when the console is
	// served over TLS.
	Secure bool
	// SessionTTL is how long a sign-in lasts (default 12 h).
	SessionTTL time.Duration
	// Gateway is the proxy address clients use, "host:port", shown in the
	// set-up instructions. Empty: the console's own host name with port 3128.
	Gateway string
}

// Console serves the admin console's pages.
type Console struct {
	srv     *controlplane.Server
	st      store.Store
	log     *slog.Logger
	secure  bool
	ttl     time.Duration
	gateway string
	pages   map[string]*template.Template
	csrf    *http.CrossOriginProtection
}

// New checks o and parses the embedded templates.
func New(o Options) (*Console, error) {
	if o.Server == nil {
		return nil, errors.New("console: no control plane server")
	}
	if o.SessionTTL < 0 {
		return nil, fmt.Errorf("console: session lifetime %v is negative", o.SessionTTL)
	}
	if o.Gateway != "" {
		if _, _, err := net.SplitHostPort(o.Gateway); err != nil {
			return nil, fmt.Errorf("console: gateway address %q: want host:port: %w", o.Gateway, err)
		}
	}
	pages, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	c := &Console{
		srv:     o.Server,
		st:      o.Server.Store(),
		log:     o.Logger,
		secure:  o.Secure,
		ttl:     o.SessionTTL,
		gateway: o.Gateway,
		pages:   pages,
		csrf:    http.NewCrossOriginProtection(),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.ttl == 0 {
		c.ttl = DefaultSessionTTL
	}
	c.csrf.SetDenyHandler(http.HandlerFunc(c.denyCrossOrigin))
	return c, nil
}

// Routes registers the console on mux. Its patterns sit beside the API's
// (/api/, /healthz, /readyz, /metrics) without overlapping them.
func (c *Console) Routes(mux *http.ServeMux) {
	page := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, c.protect(h))
	}
	signedIn := func(pattern string, h sessionHandler) {
		page(pattern, c.withSession(h))
	}
	page("GET /{$}", c.handleRoot)
	page("GET /signin", c.handleSignInForm)
	page("POST /signin", c.handleSignIn)
	signedIn("POST /signout", c.handleSignOut)
	signedIn("POST /switch-org", c.handleSwitchOrg)

	signedIn("GET /registry", c.handleRegistry)
	signedIn("POST /registry", c.handleRegistryPost)
	signedIn("GET /images", c.handleImages)
	signedIn("POST /images", c.handleImagesPost)
	signedIn("POST /catalog/{list}", c.handleCatalogPost)
	signedIn("POST /review", c.handleReviewPost)

	signedIn("GET /members", c.handleMembers)
	signedIn("POST /members", c.handleAddMember)
	signedIn("POST /members/{username}/role", c.handleSetRole)
	signedIn("POST /members/{username}/remove", c.handleRemoveMember)
	signedIn("GET /tokens", c.handleTokens)
	signedIn("POST /tokens", c.handleCreateToken)
	signedIn("POST /tokens/{id}/revoke", c.handleRevokeToken)

	signedIn("GET /activity", c.handleActivity)
	signedIn("GET /activity/export", c.handleActivityExport)
	signedIn("GET /setup", c.handleSetup)
	signedIn("GET /setup/registry.json", c.handleRegistryJSON)
	signedIn("GET /setup/gateway-ca.pem", c.handleGatewayCA)

	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(static))
	mux.Handle("GET /static/", c.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	})))
}

// protect adds the security headers, refuses cross-origin state changes and
// bounds form bodies.
func (c *Console) protect(h http.Handler) http.Handler {
	bounded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		}
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
	return c.headers(c.csrf.Handler(bounded))
}

// headers: scripts and styles only from the console itself, never framed.
func (c *Console) headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

func (c *Console) denyCrossOrigin(w http.ResponseWriter, r *http.Request) {
	c.log.Warn("console: cross-origin request refused", "method", r.Method, "path", r.URL.Path,
		"origin", r.Header.Get("Origin"), "fetch_site", r.Header.Get("Sec-Fetch-Site"))
	c.render(w, r, http.StatusForbidden, "error", &view{Title: "Request refused",
		Error: "This request came from another site, so it was refused. Open the console directly and try again."})
}

func (c *Console) handleRoot(w http.ResponseWriter, r *http.Request) {
	s, err := c.currentSession(r)
	if err != nil {
		c.fail(w, r, nil, err)
		return
	}
	if s == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/registry", http.StatusSeeOther)
}

// view is what every page template receives.
type view struct {
	Title   string
	Nav     string   // the active navigation item
	S       *session // nil when signed out
	Flash   string
	Error   string
	Errors  []string
	Data    any
	NavList []navItem
}

type navItem struct {
	Key, Label, Path string
}

var navigation = []navItem{
	{"registry", "Registry access", "/registry"},
	{"images", "Image access", "/images"},
	{"members", "Members", "/members"},
	{"tokens", "Tokens", "/tokens"},
	{"activity", "Activity", "/activity"},
	{"setup", "Setup", "/setup"},
}

// Owner reports whether the signed-in user may change things; templates
// disable every control otherwise.
func (v *view) Owner() bool {
	return v.S != nil && v.S.Owner()
}

// render executes a page into a buffer first, so that a template error
// becomes a clean 500 rather than half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	t, ok := c.pages[name]
	if !ok {
		c.log.Error("console: no such page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if v.S != nil {
		v.NavList = navigation
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.Error("console: render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// explain turns an error from a Server method into a status and a message
// fit to show; unexpected errors are logged and not shown.
func (c *Console) explain(r *http.Request, err error) (int, string) {
	var p *controlplane.Problem
	var ve *policy.ValidationError
	switch {
	case errors.As(err, &p):
		if p.Detail != "" {
			return p.Status, p.Detail
		}
		return p.Status, p.Title
	case errors.As(err, &ve):
		return http.StatusUnprocessableEntity, ve.Error()
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "The request was cancelled."
	}
	c.log.Error("console: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, "Something went wrong on the server; the details are in its log."
}

// fail renders an error page for err.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, msg := c.explain(r, err)
	title := http.StatusText(status)
	if status == http.StatusForbidden {
		title = "Not allowed"
	}
	c.render(w, r, status, "error", &view{Title: title, S: s, Error: msg})
}

// forbidden is the console's own refusal of a member's write, for
// operations whose Server method does not check the role itself.
func forbidden(org, what string) error {
	return &controlplane.Problem{Status: http.StatusForbidden, Title: "Forbidden",
		Detail: fmt.Sprintf("only owners of organization %s can %s", org, what)}
}

func badRequest(msg string) error {
	return &controlplane.Problem{Status: http.StatusBadRequest, Title: "Bad Request", Detail: msg}
}

// parseForm reads a POST form, with a clear message when it is too large.
func parseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &controlplane.Problem{Status: http.StatusRequestEntityTooLarge, Title: "Request Entity Too Large",
				Detail: fmt.Sprintf("the form is larger than %d MiB", maxForm>>20)}
		}
		return badRequest("the form could not be read: " + err.Error())
	}
	return nil
}
