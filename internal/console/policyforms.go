package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/regward/regward/internal/controlplane"
	"github.com/regward/regward/internal/policy"
)

// Both policy pages edit a draft that travels in the form until it is
// applied: the editor posts its fields, the review page carries the whole
// draft as JSON together with the version it was made from, and Save &
// Apply passes that version as the expected one, so a change made by
// someone else in between is a conflict and not silently overwritten.

// editor names a policy page that edits a draft.
type editor string

const (
	editorRegistry editor = "registry"
	editorImages   editor = "images"
)

func (e editor) title() string {
	if e == editorImages {
		return "Image access"
	}
	return "Registry access"
}

// maxBlankRows bounds the empty rows "Add row" can ask for.
const maxBlankRows = 20

type registryRow struct {
	Index                                    int
	Host, Access, Description                string
	HostError, AccessError, DescriptionError string
}

type registryView struct {
	Version int64
	Enabled bool
	Rows    []registryRow
	Count   int
	Max     int
	Blank   int
	Presets []preset
	Region  string
}

func appliedFlash(r *http.Request) string {
	v, err := strconv.ParseInt(r.URL.Query().Get("applied"), 10, 64)
	if err != nil || v <= 0 {
		return ""
	}
	return fmt.Sprintf("Applied: the policy is now version %d. Gateways enforce it within seconds.", v)
}

func (c *Console) handleRegistry(w http.ResponseWriter, r *http.Request, s *session) {
	rec, err := c.st.GetPolicy(r.Context(), s.Org)
	if err != nil {
		c.fail(w, r, s, fmt.Errorf("load policy of org %q: %w", s.Org, err))
		return
	}
	v := &view{Flash: appliedFlash(r)}
	c.renderRegistry(w, r, s, http.StatusOK, v, rec.Policy, rec.Version, nil, 1, defaultRegion)
}

// renderRegistry shows the registry editor for draft with its field errors.
func (c *Console) renderRegistry(w http.ResponseWriter, r *http.Request, s *session, status int, v *view,
	draft policy.Policy, version int64, errs []policy.FieldError, blank int, region string) {
	ra := draft.RegistryAccess
	if !s.Owner() {
		blank = 0 // nothing to fill in for a reader
	}
	rv := registryView{Version: version, Enabled: ra.Enabled, Count: len(ra.Registries), Max: c.srv.MaxRegistries(),
		Blank: blank, Presets: presets, Region: region}
	for i, reg := range ra.Registries {
		access := string(reg.Access)
		if access == "" {
			access = string(policy.AccessPullPush)
		}
		rv.Rows = append(rv.Rows, registryRow{Index: i, Host: reg.Host, Access: access, Description: reg.Description})
	}
	for i := 0; i < blank; i++ {
		rv.Rows = append(rv.Rows, registryRow{Index: len(rv.Rows), Access: string(policy.AccessPullPush)})
	}
	for _, fe := range errs {
		if i, field, ok := registryField(fe.Field); ok && i < len(rv.Rows) {
			row := &rv.Rows[i]
			switch field {
			case "host":
				row.HostError = fe.Message
			case "access":
				row.AccessError = fe.Message
			default:
				row.DescriptionError = fe.Message
			}
			continue
		}
		v.Errors = append(v.Errors, fieldLabel(fe.Field)+": "+fe.Message)
	}
	if len(errs) > 0 && v.Error == "" {
		v.Error = fmt.Sprintf("The draft has %s; nothing was applied.", plural(len(errs), "problem"))
	}
	v.Title, v.Nav, v.S, v.Data = "Registry access", "registry", s, rv
	c.render(w, r, status, "registry", v)
}

var registryFieldPattern = regexp.MustCompile(`^registryAccess\.registries\[(\d+)\]\.(host|access|description)$`)

func registryField(path string) (int, string, bool) {
	m := registryFieldPattern.FindStringSubmatch(path)
	if m == nil {
		return 0, "", false
	}
	i, err := strconv.Atoi(m[1])
	return i, m[2], err == nil
}

func (c *Console) handleRegistryPost(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.Owner() { // drafts are only for those who can apply them
		c.fail(w, r, s, forbidden(s.Org, "change its policy"))
		return
	}
	if err := parseForm(r); err != nil {
		c.fail(w, r, s, err)
		return
	}
	form := r.PostForm
	version, err := formVersion(form)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	rec, err := c.st.GetPolicy(r.Context(), s.Org)
	if err != nil {
		c.fail(w, r, s, fmt.Errorf("load policy of org %q: %w", s.Org, err))
		return
	}
	ra, err := registryFromForm(form, rec.Policy.RegistryAccess)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	draft := rec.Policy.Clone()
	draft.RegistryAccess = ra
	region := strings.TrimSpace(form.Get("region"))
	if region == "" {
		region = defaultRegion
	}
	blank := 1
	v := &view{}
	switch {
	case form.Has("remove"):
		v.Flash = "Removed the row from the draft (not applied yet)."
	case form.Get("action") == "add":
		blank, _ = strconv.Atoi(form.Get("blank"))
		blank = min(max(blank+1, 2), maxBlankRows)
	case form.Has("preset"):
		p, ok := presetByKey(form.Get("preset"))
		if !ok {
			c.fail(w, r, s, badRequest(fmt.Sprintf("unknown preset %q", form.Get("preset"))))
			return
		}
		hosts, err := p.hosts(region)
		if err != nil {
			v.Error = err.Error()
			c.renderRegistry(w, r, s, formAgain, v, draft, version, nil, blank, region)
			return
		}
		var n int
		draft.RegistryAccess.Registries, n = addHosts(draft.RegistryAccess.Registries, hosts, p.Label)
		v.Flash = fmt.Sprintf("%s: added %s to the draft (not applied yet).", p.Label, plural(n, "entry"))
		if n == 0 {
			v.Flash = p.Label + ": every entry is already listed."
		}
		if p.Note != "" {
			v.Flash += " " + p.Note
		}
	default:
		c.review(w, r, s, editorRegistry, draft, version)
		return
	}
	c.renderRegistry(w, r, s, http.StatusOK, v, draft, version, nil, blank, region)
}

// registryFromForm reads the editor's rows. Rows whose fields are all empty
// are dropped; the row named by a "remove" button goes too.
func registryFromForm(form url.Values, cur policy.RegistryAccess) (policy.RegistryAccess, error) {
	hosts, access, descs := form["host"], form["access"], form["description"]
	if len(access) != len(hosts) || len(descs) != len(hosts) {
		return policy.RegistryAccess{}, badRequest("the registry rows are incomplete: every row needs a host, access and description field")
	}
	remove := -1
	if form.Has("remove") {
		i, err := strconv.Atoi(form.Get("remove"))
		if err != nil || i < 0 || i >= len(hosts) {
			return policy.RegistryAccess{}, badRequest(fmt.Sprintf("remove=%q does not name a row", form.Get("remove")))
		}
		remove = i
	}
	explicit := make(map[string]bool) // entries that spell out pull-push keep it
	for _, reg := range cur.Registries {
		if reg.Access == policy.AccessPullPush {
			explicit[hostKey(reg.Host)] = true
		}
	}
	ra := policy.RegistryAccess{Enabled: form.Get("enabled") == "on", Registries: []policy.Registry{}}
	for i := range hosts {
		h, d := strings.TrimSpace(hosts[i]), strings.TrimSpace(descs[i])
		if i == remove || (h == "" && d == "") {
			continue
		}
		a := policy.Access(access[i])
		if a == policy.AccessPullPush && !explicit[hostKey(h)] {
			a = "" // the default; do not turn it into a change
		}
		ra.Registries = append(ra.Registries, policy.Registry{Host: h, Access: a, Description: d})
	}
	return ra, nil
}

func formVersion(form url.Values) (int64, error) {
	v, err := strconv.ParseInt(form.Get("version"), 10, 64)
	if err != nil || v <= 0 {
		return 0, badRequest(fmt.Sprintf("version=%q is not a policy version; reload the page", form.Get("version")))
	}
	return v, nil
}

// review dry-runs draft and shows its diff and impact, or the editor again
// with what is wrong.
func (c *Console) review(w http.ResponseWriter, r *http.Request, s *session, from editor, draft policy.Policy, version int64) {
	res, err := c.srv.ApplyPolicy(r.Context(), s.Principal, s.Org, draft, version, true)
	if err != nil {
		c.editorError(w, r, s, from, draft, version, err)
		return
	}
	rv := reviewView{From: string(from), FromTitle: from.title(), Version: version, Changes: changeViews(res.Changes)}
	data, err := json.Marshal(draft)
	if err != nil {
		c.fail(w, r, s, fmt.Errorf("encode draft: %w", err))
		return
	}
	rv.Draft = string(data)
	prev, err := c.srv.Preview(r.Context(), s.Principal, s.Org, draft)
	if err != nil {
		_, msg := c.explain(r, err)
		rv.PreviewError = msg
	} else {
		rv.Preview = &prev
		for _, h := range prev.TopHosts {
			if n := redirectNote(h.Name); n != "" {
				rv.RedirectNotes = append(rv.RedirectNotes, n)
			}
		}
	}
	c.render(w, r, http.StatusOK, "review", &view{Title: "Review changes", Nav: string(from), S: s, Data: rv})
}

// editorError shows the editor again with err: field errors beside their
// fields, a conflict with the draft kept and the newer version to review
// against, anything else as an error page.
func (c *Console) editorError(w http.ResponseWriter, r *http.Request, s *session, from editor, draft policy.Policy, version int64, err error) {
	var ve *policy.ValidationError
	var p *controlplane.Problem
	v := &view{}
	var fieldErrs []policy.FieldError
	switch {
	case errors.As(err, &ve):
		fieldErrs = ve.Errors
	case errors.As(err, &p) && p.Status == http.StatusConflict && p.Version > 0:
		v.Error = fmt.Sprintf("Someone else changed the policy meanwhile (it is now version %d), so nothing was applied. "+
			"Your edits are kept below: review them against the new version, then apply again.", p.Version)
		version = p.Version
	default:
		c.fail(w, r, s, err)
		return
	}
	c.renderEditor(w, r, s, formAgain, v, from, draft, version, fieldErrs)
}

func (c *Console) renderEditor(w http.ResponseWriter, r *http.Request, s *session, status int, v *view,
	from editor, draft policy.Policy, version int64, errs []policy.FieldError) {
	if from == editorImages {
		c.renderImages(w, r, s, status, v, draft, version, errs)
		return
	}
	c.renderRegistry(w, r, s, status, v, draft, version, errs, 1, defaultRegion)
}

type reviewView struct {
	From, FromTitle string
	Version         int64
	Draft           string
	Changes         []changeView
	Preview         *controlplane.PreviewResult
	PreviewError    string
	// RedirectNotes explain denied hosts that serve another registry's downloads.
	RedirectNotes []string
}

// handleReviewPost applies the reviewed draft, or takes it back to its editor.
func (c *Console) handleReviewPost(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.Owner() {
		c.fail(w, r, s, forbidden(s.Org, "change its policy"))
		return
	}
	if err := parseForm(r); err != nil {
		c.fail(w, r, s, err)
		return
	}
	from := editor(r.PostFormValue("from"))
	if from != editorRegistry && from != editorImages {
		c.fail(w, r, s, badRequest(fmt.Sprintf("from=%q: the review must come from registry or images", from)))
		return
	}
	version, err := formVersion(r.PostForm)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	draft, err := policy.Decode([]byte(r.PostFormValue("draft")))
	if err != nil {
		c.fail(w, r, s, badRequest("the reviewed draft could not be read: "+err.Error()))
		return
	}
	switch r.PostFormValue("action") {
	case "edit":
		c.renderEditor(w, r, s, http.StatusOK, &view{}, from, draft, version, nil)
	case "apply":
		res, err := c.srv.ApplyPolicy(r.Context(), s.Principal, s.Org, draft, version, false)
		if err != nil {
			c.editorError(w, r, s, from, draft, version, err)
			return
		}
		c.log.Info("console: policy applied", "org", s.Org, "user", s.Username, "version", res.Version)
		http.Redirect(w, r, fmt.Sprintf("/%s?applied=%d", from, res.Version), http.StatusSeeOther)
	default:
		c.fail(w, r, s, badRequest(fmt.Sprintf("action=%q: use apply or edit", r.PostFormValue("action"))))
	}
}

// changeView is one line of a policy diff, in words.
type changeView struct {
	What   string
	Kind   string // added, removed, changed
	Before string
	After  string
}

// changeViews renders changes; values go through JSON so that a fresh diff
// and one read back from the activity log look the same.
func changeViews(changes []policy.Change) []changeView {
	out := make([]changeView, 0, len(changes))
	for _, ch := range changes {
		out = append(out, changeView{What: fieldLabel(ch.Path), Kind: changeKind(ch),
			Before: showValue(generic(ch.Before)), After: showValue(generic(ch.After))})
	}
	return out
}

func changeKind(ch policy.Change) string {
	if strings.HasSuffix(ch.Path, "orgNamespaces") || strings.HasSuffix(ch.Path, "repositoryAllowlist") {
		return "list" // Before holds what was removed, After what was added
	}
	switch {
	case ch.Before == nil:
		return "added"
	case ch.After == nil:
		return "removed"
	}
	return "changed"
}

func generic(v any) any {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return string(b)
	}
	return out
}

var fieldLabels = map[string]string{
	"org":                                     "Organization",
	"registryAccess":                          "Registry access",
	"registryAccess.enabled":                  "Registry access",
	"registryAccess.registries":               "Registry list",
	"imageAccess":                             "Image access",
	"imageAccess.enabled":                     "Image access",
	"imageAccess.officialImages":              "Official images",
	"imageAccess.verifiedPublisherImages":     "Verified publisher images",
	"imageAccess.sponsoredOSSImages":          "Sponsored OSS images",
	"imageAccess.communityImages":             "Community images",
	"imageAccess.orgNamespaces":               "Organization namespaces",
	"imageAccess.repositoryAllowlist":         "Repository allowlist",
	"namespaceAccess":                         "Namespace access",
	"namespaceAccess.pushOnlyToOrgNamespaces": "Push only to organization namespaces",
}

var registryKeyPattern = regexp.MustCompile(`^registryAccess\.registries\[host=(.*)\]$`)

// fieldLabel names a policy field path in words.
func fieldLabel(path string) string {
	if l, ok := fieldLabels[path]; ok {
		return l
	}
	if m := registryKeyPattern.FindStringSubmatch(path); m != nil {
		return "Registry " + m[1]
	}
	if i, field, ok := registryField(path); ok {
		return fmt.Sprintf("Registry row %d, %s", i+1, field)
	}
	if path == "" {
		return "Policy"
	}
	return path
}
