package console

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/regward/regward/internal/controlplane"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// kindChoice is one entry of the activity page's kind filter.
type kindChoice struct {
	Value, Label string
	kinds        []string
}

var kindChoices = []kindChoice{
	{"", "Changes and sign-ins", nil},
	{"policy", "Policy changes", []string{store.KindPolicyApply, store.KindCatalogUpdate, store.KindOrgCreate}},
	{"members", "Member changes", []string{store.KindMemberAdd, store.KindMemberUpdate, store.KindMemberRemove, store.KindUserPassword}},
	{"tokens", "Token changes", []string{store.KindTokenCreate, store.KindTokenRevoke}},
	{"signins", "Sign-ins", []string{store.KindSignIn, store.KindSignInFailed}},
	{"denials", "Denials", []string{controlplane.KindDenial}},
}

var kindLabels = map[string]string{
	store.KindPolicyApply:   "Policy applied",
	store.KindCatalogUpdate: "Namespace list",
	store.KindOrgCreate:     "Organization created",
	store.KindMemberAdd:     "Member added",
	store.KindMemberUpdate:  "Role changed",
	store.KindMemberRemove:  "Member removed",
	store.KindUserPassword:  "Password changed",
	store.KindTokenCreate:   "Token created",
	store.KindTokenRevoke:   "Token revoked",
	store.KindSignIn:        "Sign-in",
	store.KindSignInFailed:  "Failed sign-in",
	controlplane.KindDenial: "Denied",
}

// activityFilter is the page's filter as the user typed it.
type activityFilter struct {
	Kind, User, Host, Since, Until string
}

// values encodes the filter for links (paging, export).
func (f activityFilter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"kind": f.Kind, "user": f.User, "host": f.Host, "since": f.Since, "until": f.Until} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

type activityRow struct {
	controlplane.ActivityItem
	Label   string
	Denial  bool
	Changes []changeView
	Host    string
	Rule    string
	Note    string // a denied redirect host: which registry it serves
}

type activityView struct {
	Filter     activityFilter
	Kinds      []kindChoice
	Rows       []activityRow
	Older      string // link to the next page, older entries
	Newest     string // link back to the first page, when paging
	ExportCSV  string
	ExportJSON string
}

// timeLayouts are what the since/until fields accept: the browser's
// datetime-local value, with or without seconds, a date, or RFC 3339.
var timeLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339, "2006-01-02"}

func parseWhen(name, s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q is not a time such as 2026-01-02T15:04 (UTC)", name, s)
}

// activityQuery reads the page's filters into a Server query.
func activityQuery(r *http.Request) (activityFilter, controlplane.ActivityQuery, error) {
	qs := r.URL.Query()
	f := activityFilter{Kind: qs.Get("kind"), User: strings.TrimSpace(qs.Get("user")), Host: strings.TrimSpace(qs.Get("host")),
		Since: strings.TrimSpace(qs.Get("since")), Until: strings.TrimSpace(qs.Get("until"))}
	var q controlplane.ActivityQuery
	if f.Host != "" && f.Kind == "" {
		f.Kind = "denials" // only denials have a host
	}
	found := false
	for _, kc := range kindChoices {
		if kc.Value == f.Kind {
			q.Kinds, found = kc.kinds, true
		}
	}
	if !found {
		return f, q, badRequest(fmt.Sprintf("kind %q is not one of the listed kinds", f.Kind))
	}
	if f.Host != "" && f.Kind != "denials" {
		return f, q, badRequest("the host filter applies to denials only")
	}
	if f.Host != "" {
		h, err := policy.NormalizeHost(f.Host)
		if err != nil {
			return f, q, badRequest(fmt.Sprintf("host %q: %v", f.Host, err))
		}
		q.Host = h
	}
	q.Actor = f.User
	var err error
	if f.Since != "" {
		if q.Since, err = parseWhen("since", f.Since); err != nil {
			return f, q, badRequest(err.Error())
		}
	}
	if f.Until != "" {
		if q.Until, err = parseWhen("until", f.Until); err != nil {
			return f, q, badRequest(err.Error())
		}
	}
	if b := qs.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			return f, q, badRequest(fmt.Sprintf("before=%q is not a cursor from a previous page", b))
		}
		q.Before = n
	}
	return f, q, nil
}

// activityPageSize is how many entries a page shows.
const activityPageSize = 50

func (c *Console) handleActivity(w http.ResponseWriter, r *http.Request, s *session) {
	f, q, err := activityQuery(r)
	av := activityView{Filter: f, Kinds: kindChoices}
	v := &view{}
	status := http.StatusOK
	if err != nil {
		status, v.Error = c.explain(r, err)
		if status < http.StatusInternalServerError {
			status = formAgain
		}
	} else {
		q.Limit = activityPageSize
		page, err := c.srv.Activity(r.Context(), s.Principal, s.Org, q)
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		for _, it := range page.Items {
			av.Rows = append(av.Rows, activityRowOf(it))
		}
		vals := f.values()
		if page.Next != "" {
			older := f.values()
			older.Set("before", page.Next)
			av.Older = "/activity?" + older.Encode()
		}
		if q.Before != 0 {
			av.Newest = "/activity?" + vals.Encode()
		}
		vals.Set("format", "csv")
		av.ExportCSV = "/activity/export?" + vals.Encode()
		vals.Set("format", "json")
		av.ExportJSON = "/activity/export?" + vals.Encode()
	}
	v.Title, v.Nav, v.S, v.Data = "Activity", "activity", s, av
	c.render(w, r, status, "activity", v)
}

func activityRowOf(it controlplane.ActivityItem) activityRow {
	row := activityRow{ActivityItem: it, Label: kindLabels[it.Kind], Denial: it.Kind == controlplane.KindDenial}
	if row.Label == "" {
		row.Label = it.Kind
	}
	if raw, ok := it.Diff.(json.RawMessage); ok && len(raw) > 0 {
		var changes []policy.Change
		if err := json.Unmarshal(raw, &changes); err == nil {
			row.Changes = changeViews(changes)
		}
	}
	if row.Denial {
		row.Host, _ = it.Detail["host"].(string)
		row.Rule, _ = it.Detail["rule"].(string)
		row.Note = redirectNote(row.Host)
	}
	return row
}

// maxExport bounds one export; narrow the filter for more.
const maxExport = 50_000

func (c *Console) handleActivityExport(w http.ResponseWriter, r *http.Request, s *session) {
	format := r.URL.Query().Get("format")
	if format != "csv" && format != "json" {
		c.fail(w, r, s, badRequest(fmt.Sprintf("format %q: use csv or json", format)))
		return
	}
	_, q, err := activityQuery(r)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	q.Before, q.Limit = 0, 500
	items := []controlplane.ActivityItem{}
	more := false
	for {
		page, err := c.srv.Activity(r.Context(), s.Principal, s.Org, q)
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		items = append(items, page.Items...)
		more = page.Next != ""
		if !more || len(items) >= maxExport {
			break
		}
		if q.Before, err = strconv.ParseInt(page.Next, 10, 64); err != nil {
			c.fail(w, r, s, fmt.Errorf("activity cursor %q: %w", page.Next, err))
			return
		}
	}
	if len(items) > maxExport {
		items, more = items[:maxExport], true
	}
	truncated := more
	name := fmt.Sprintf("regward-activity-%s-%s.%s", s.Org, time.Now().UTC().Format("20060102-150405"), format)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if truncated {
		w.Header().Set("Regward-Export-Truncated", strconv.Itoa(maxExport))
	}
	if format == "json" {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"org": s.Org, "items": items, "truncated": truncated}); err != nil {
			c.log.Warn("console: write activity export", "org", s.Org, "err", err)
		}
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	if err := writeActivityCSV(w, items); err != nil {
		c.log.Warn("console: write activity export", "org", s.Org, "err", err)
	}
}

func writeActivityCSV(w http.ResponseWriter, items []controlplane.ActivityItem) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"id", "time", "kind", "actor", "target", "summary", "version", "host", "image", "rule", "diff"}); err != nil {
		return err
	}
	for _, it := range items {
		var host, image, rule, diff string
		if it.Detail != nil {
			host, _ = it.Detail["host"].(string)
			image, _ = it.Detail["image"].(string)
			rule, _ = it.Detail["rule"].(string)
		}
		if raw, ok := it.Diff.(json.RawMessage); ok {
			diff = string(raw)
		}
		version := ""
		if it.Version != 0 {
			version = strconv.FormatInt(it.Version, 10)
		}
		rec := []string{strconv.FormatInt(it.ID, 10), it.Time.UTC().Format(time.RFC3339), it.Kind, it.Actor, it.Target,
			it.Summary, version, host, image, rule, diff}
		for i := range rec {
			rec[i] = spreadsheetSafe(rec[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// spreadsheetSafe keeps a cell from being read as a formula: denial
// reasons quote image names that anyone with a proxy login can choose.
func spreadsheetSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
