package console

import (
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

type categoryView struct {
	Field, Label, Help string
	Value              string
	Error              string
}

type catalogView struct {
	List, Title, Heading, Help string
	Own                        string // the org's own additions, one a line
	OwnCount                   int
	Defaults                   string // the server-wide list, one a line
	DefaultsCount              int
	Error                      string
	// Draft is what the owner typed when saving failed, shown again.
	Draft        string
	DraftScope   string
	EditDefaults bool // a server admin may change the shipped defaults
}

type imagesView struct {
	Version             int64
	Enabled             bool
	Categories          []categoryView
	OrgNamespaces       string
	OrgNamespacesErrors []string
	Allowlist           string
	AllowlistErrors     []string
	PushOnly            bool
	PushOnlyError       string
	Catalogs            []catalogView
}

var categories = []categoryView{
	{Field: "officialImages", Label: "Official images", Help: "Docker Official Images: library/* such as nginx or alpine."},
	{Field: "verifiedPublisherImages", Label: "Verified publisher images", Help: "Images of namespaces on the verified publisher list below."},
	{Field: "sponsoredOSSImages", Label: "Sponsored OSS images", Help: "Images of namespaces on the sponsored open-source list below."},
	{Field: "communityImages", Label: "Community images", Help: "Every other Docker Hub namespace."},
}

func restriction(ia policy.ImageAccess, field string) policy.Restriction {
	switch field {
	case "officialImages":
		return ia.OfficialImages
	case "verifiedPublisherImages":
		return ia.VerifiedPublisherImages
	case "sponsoredOSSImages":
		return ia.SponsoredOSSImages
	default:
		return ia.CommunityImages
	}
}

func setRestriction(ia *policy.ImageAccess, field string, r policy.Restriction) {
	switch field {
	case "officialImages":
		ia.OfficialImages = r
	case "verifiedPublisherImages":
		ia.VerifiedPublisherImages = r
	case "sponsoredOSSImages":
		ia.SponsoredOSSImages = r
	default:
		ia.CommunityImages = r
	}
}

func (c *Console) handleImages(w http.ResponseWriter, r *http.Request, s *session) {
	rec, err := c.st.GetPolicy(r.Context(), s.Org)
	if err != nil {
		c.fail(w, r, s, fmt.Errorf("load policy of org %q: %w", s.Org, err))
		return
	}
	v := &view{Flash: appliedFlash(r)}
	if list := r.URL.Query().Get("saved"); list != "" {
		v.Flash = "Saved the " + catalogTitle(list) + " list. Gateways use it within seconds."
	}
	c.renderImages(w, r, s, http.StatusOK, v, rec.Policy, rec.Version, nil)
}

var listFieldPattern = regexp.MustCompile(`^imageAccess\.(orgNamespaces|repositoryAllowlist)\[(\d+)\]$`)

// renderImages shows the image access editor for draft with its field
// errors, and the namespace catalog.
func (c *Console) renderImages(w http.ResponseWriter, r *http.Request, s *session, status int, v *view,
	draft policy.Policy, version int64, errs []policy.FieldError) {
	ia := draft.ImageAccess
	iv := imagesView{Version: version, Enabled: ia.Enabled, PushOnly: draft.NamespaceAccess.PushOnlyToOrgNamespaces,
		OrgNamespaces: strings.Join(ia.OrgNamespaces, "\n"), Allowlist: strings.Join(ia.RepositoryAllowlist, "\n")}
	for _, cv := range categories {
		cv.Value = string(restriction(ia, cv.Field))
		iv.Categories = append(iv.Categories, cv)
	}
	for _, fe := range errs {
		if m := listFieldPattern.FindStringSubmatch(fe.Field); m != nil {
			i, _ := strconv.Atoi(m[2])
			msg := fmt.Sprintf("Line %d: %s", i+1, fe.Message) // the textarea shows one entry a line
			if m[1] == "orgNamespaces" {
				iv.OrgNamespacesErrors = append(iv.OrgNamespacesErrors, msg)
			} else {
				iv.AllowlistErrors = append(iv.AllowlistErrors, msg)
			}
			continue
		}
		if field, ok := strings.CutPrefix(fe.Field, "imageAccess."); ok {
			if i := categoryIndex(field); i >= 0 {
				iv.Categories[i].Error = fe.Message
				continue
			}
		}
		if fe.Field == "namespaceAccess.pushOnlyToOrgNamespaces" {
			iv.PushOnlyError = fe.Message
			continue
		}
		v.Errors = append(v.Errors, fieldLabel(fe.Field)+": "+fe.Message)
	}
	if len(errs) > 0 && v.Error == "" {
		v.Error = fmt.Sprintf("The draft has %s; nothing was applied.", plural(len(errs), "problem"))
	}
	cats, err := c.catalogViews(r, s)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	iv.Catalogs = cats
	if d, ok := v.Data.(catalogDraft); ok {
		for i := range iv.Catalogs {
			if iv.Catalogs[i].List == d.list {
				iv.Catalogs[i].Error, iv.Catalogs[i].Draft, iv.Catalogs[i].DraftScope = d.err, d.text, d.scope
			}
		}
	}
	v.Title, v.Nav, v.S, v.Data = "Image access", "images", s, iv
	c.render(w, r, status, "images", v)
}

func categoryIndex(field string) int {
	for i, cv := range categories {
		if cv.Field == field {
			return i
		}
	}
	return -1
}

func catalogTitle(list string) string {
	switch controlplane.CatalogList(list) {
	case controlplane.ListVerifiedPublishers:
		return "verified publisher"
	case controlplane.ListSponsoredOSS:
		return "sponsored OSS"
	}
	return list
}

func (c *Console) catalogViews(r *http.Request, s *session) ([]catalogView, error) {
	var out []catalogView
	for _, l := range []struct {
		list controlplane.CatalogList
		help string
	}{
		{controlplane.ListVerifiedPublishers, "Docker Hub namespaces of verified publishers. Their images count as verified publisher images."},
		{controlplane.ListSponsoredOSS, "Docker Hub namespaces of the Docker-Sponsored Open Source program. Their images count as sponsored OSS images."},
	} {
		cv, err := c.srv.GetCatalogList(r.Context(), s.Principal, s.Org, l.list)
		if err != nil {
			return nil, fmt.Errorf("read %s list: %w", l.list, err)
		}
		title := catalogTitle(string(l.list))
		view := catalogView{List: string(l.list), Title: title, Heading: strings.ToUpper(title[:1]) + title[1:] + " namespaces", Help: l.help,
			Own: strings.Join(cv.Namespaces, "\n"), OwnCount: len(cv.Namespaces),
			Defaults: strings.Join(cv.Defaults, "\n"), DefaultsCount: len(cv.Defaults),
			EditDefaults: s.ServerAdmin}
		out = append(out, view)
	}
	return out, nil
}

func (c *Console) handleImagesPost(w http.ResponseWriter, r *http.Request, s *session) {
	if !s.Owner() {
		c.fail(w, r, s, forbidden(s.Org, "change its policy"))
		return
	}
	if err := parseForm(r); err != nil {
		c.fail(w, r, s, err)
		return
	}
	version, err := formVersion(r.PostForm)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	rec, err := c.st.GetPolicy(r.Context(), s.Org)
	if err != nil {
		c.fail(w, r, s, fmt.Errorf("load policy of org %q: %w", s.Org, err))
		return
	}
	draft := rec.Policy.Clone()
	draft.ImageAccess, draft.NamespaceAccess = imagesFromForm(r.PostForm)
	c.review(w, r, s, editorImages, draft, version)
}

// imagesFromForm reads the image access editor. A missing or unknown
// restriction is passed on as it is, so that validation names it.
func imagesFromForm(form url.Values) (policy.ImageAccess, policy.NamespaceAccess) {
	ia := policy.ImageAccess{
		Enabled:             form.Get("enabled") == "on",
		OrgNamespaces:       lines(form.Get("orgNamespaces")),
		RepositoryAllowlist: lines(form.Get("repositoryAllowlist")),
	}
	for _, cv := range categories {
		setRestriction(&ia, cv.Field, policy.Restriction(form.Get(cv.Field)))
	}
	return ia, policy.NamespaceAccess{PushOnlyToOrgNamespaces: form.Get("pushOnlyToOrgNamespaces") == "on"}
}

// lines splits a textarea into its non-blank, trimmed lines.
func lines(s string) []string {
	out := []string{}
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// catalogDraft carries a failed catalog save back into the page.
type catalogDraft struct {
	list, scope, text, err string
}

// handleCatalogPost replaces the org's own additions to a namespace list,
// or, for a server admin, the server-wide defaults.
func (c *Console) handleCatalogPost(w http.ResponseWriter, r *http.Request, s *session) {
	if err := parseForm(r); err != nil {
		c.fail(w, r, s, err)
		return
	}
	list := controlplane.CatalogList(r.PathValue("list"))
	if list != controlplane.ListVerifiedPublishers && list != controlplane.ListSponsoredOSS {
		c.fail(w, r, s, badRequest(fmt.Sprintf("catalog list %q: use verified-publishers or sponsored-oss", list)))
		return
	}
	scope := r.PostFormValue("scope")
	org := s.Org
	switch scope {
	case "org":
	case "server":
		org = ""
	default:
		c.fail(w, r, s, badRequest(fmt.Sprintf("scope=%q: use org or server", scope)))
		return
	}
	text := r.PostFormValue("namespaces")
	if _, err := c.srv.SetCatalogList(r.Context(), s.Principal, org, list, lines(text)); err != nil {
		var p *controlplane.Problem
		if errors.As(err, &p) && p.Status == http.StatusBadRequest {
			rec, gerr := c.st.GetPolicy(r.Context(), s.Org)
			if gerr != nil {
				c.fail(w, r, s, fmt.Errorf("load policy of org %q: %w", s.Org, gerr))
				return
			}
			v := &view{Error: "The " + catalogTitle(string(list)) + " list was not saved: " + p.Detail,
				Data: catalogDraft{list: string(list), scope: scope, text: text, err: p.Detail}}
			c.renderImages(w, r, s, formAgain, v, rec.Policy, rec.Version, nil)
			return
		}
		c.fail(w, r, s, err)
		return
	}
	c.log.Info("console: namespace list saved", "org", s.Org, "user", s.Username, "list", list, "scope", scope)
	http.Redirect(w, r, "/images?saved="+url.QueryEscape(string(list)), http.StatusSeeOther)
}
