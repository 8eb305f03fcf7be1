package controlplane

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// CatalogList names one of the two namespace lists.
type CatalogList string

const (
	ListVerifiedPublishers CatalogList = "verified-publishers"
	ListSponsoredOSS       CatalogList = "sponsored-oss"
)

func parseList(s string) (CatalogList, error) {
	switch CatalogList(s) {
	case ListVerifiedPublishers, ListSponsoredOSS:
		return CatalogList(s), nil
	}
	return "", errNotFound(fmt.Sprintf("catalog list %q: use verified-publishers or sponsored-oss", s))
}

func (l CatalogList) get(c policy.Catalog) []string {
	if l == ListVerifiedPublishers {
		return c.VerifiedPublishers
	}
	return c.SponsoredOSS
}

func (l CatalogList) set(c *policy.Catalog, names []string) {
	if l == ListVerifiedPublishers {
		c.VerifiedPublishers = names
	} else {
		c.SponsoredOSS = names
	}
}

// CatalogView is one list as the API shows it.
type CatalogView struct {
	List       CatalogList `json:"list"`
	Scope      string      `json:"scope"` // "server" or the org
	Namespaces []string    `json:"namespaces"`
	// Defaults are the server-wide entries, shown with an org's own list.
	Defaults []string `json:"defaults,omitempty"`
}

type catalogPut struct {
	Namespaces []string `json:"namespaces"`
}

// GetCatalogList reads a list of the server scope (org "") or of an org.
func (s *Server) GetCatalogList(ctx context.Context, who Principal, org string, list CatalogList) (CatalogView, error) {
	if org != "" && who.Org != org {
		return CatalogView{}, errForbidden(fmt.Sprintf("your token is for organization %q, not %q", who.Org, org))
	}
	if org == "" && who.Kind != store.TokenGateway && who.Role != store.RoleOwner && !who.ServerAdmin {
		return CatalogView{}, errForbidden("only owners can read the catalog")
	}
	def, err := s.store.GetCatalog(ctx, store.ServerScope)
	if err != nil {
		return CatalogView{}, err
	}
	if org == "" {
		return CatalogView{List: list, Scope: "server", Namespaces: nonNil(list.get(def))}, nil
	}
	own, err := s.store.GetCatalog(ctx, org)
	if err != nil {
		return CatalogView{}, s.storeErr(err, "organization "+org)
	}
	return CatalogView{List: list, Scope: org, Namespaces: nonNil(list.get(own)), Defaults: nonNil(list.get(def))}, nil
}

// SetCatalogList replaces a list: the server scope needs a server admin, an
// org's own list an owner of it. Affected orgs get a new policy version so
// gateways pick the change up.
func (s *Server) SetCatalogList(ctx context.Context, who Principal, org string, list CatalogList, names []string) (CatalogView, error) {
	switch {
	case org == "" && !who.ServerAdmin:
		return CatalogView{}, errForbidden("only a server admin can change the shipped catalog defaults")
	case org != "" && !who.Owner(org):
		return CatalogView{}, errForbidden(fmt.Sprintf("only owners of organization %s can change its catalog", org))
	}
	clean, err := cleanNamespaces(names)
	if err != nil {
		return CatalogView{}, err
	}
	scope := org
	cur, err := s.store.GetCatalog(ctx, scope)
	if err != nil {
		return CatalogView{}, s.storeErr(err, "organization "+org)
	}
	list.set(&cur, clean)
	actOrg := org
	act := store.Activity{Org: actOrg, Time: s.now(), Actor: who.Username, Kind: store.KindCatalogUpdate,
		Target: string(list), Summary: fmt.Sprintf("%s list now has %s", list, plural(len(clean), "namespace"))}
	versions, err := s.store.SetCatalog(ctx, scope, cur, act)
	if err != nil {
		return CatalogView{}, s.storeErr(err, "organization "+org)
	}
	for o, v := range versions {
		s.hub.publish(o, v)
	}
	return s.GetCatalogList(ctx, who, org, list)
}

// cleanNamespaces validates, lowercases nothing (namespaces are lowercase by
// grammar), de-duplicates and sorts.
func cleanNamespaces(names []string) ([]string, error) {
	joined := strings.Join(names, "\n")
	parsed, err := policy.ParseNamespaceList([]byte(joined))
	if err != nil {
		return nil, errBadRequest(err.Error())
	}
	if len(parsed) != len(nonEmpty(names)) {
		return nil, errBadRequest("namespaces must not contain comments or blank entries")
	}
	sort.Strings(parsed)
	out := parsed[:0]
	for i, n := range parsed {
		if i == 0 || n != parsed[i-1] {
			out = append(out, n)
		}
	}
	return out, nil
}

func nonEmpty(s []string) []string {
	var out []string
	for _, x := range s {
		if strings.TrimSpace(x) != "" {
			out = append(out, x)
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) handleGetCatalog(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	list, err := parseList(r.PathValue("list"))
	if err != nil {
		writeError(w, err)
		return
	}
	v, err := s.GetCatalogList(r.Context(), p, r.PathValue("org"), list)
	if err != nil {
		s.logUnexpected(r, err)
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) handlePutCatalog(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	list, err := parseList(r.PathValue("list"))
	if err != nil {
		writeError(w, err)
		return
	}
	var req catalogPut
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	v, err := s.SetCatalogList(r.Context(), p, r.PathValue("org"), list, req.Namespaces)
	if err != nil {
		s.logUnexpected(r, err)
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
