package controlplane

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/regward/regward/internal/ociref"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// previewWindow is how far back the impact preview looks.
const previewWindow = 7 * 24 * time.Hour

// previewPage is how many decisions are read from the log at a time.
const previewPage = 1000

// maxPreviewDecisions bounds one preview's work; a busy org's week can hold
// millions of requests, and the newest ones are the most telling.
const maxPreviewDecisions = 200_000

// previewTop and previewSamples bound the lists in a PreviewResult.
const (
	previewTop     = 10
	previewSamples = 10
)

// PreviewResult says which recently allowed requests a draft policy would
// have denied.
type PreviewResult struct {
	Org   string    `json:"org"`
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Examined is how many allowed requests of the window were decided again.
	Examined int `json:"examined"`
	// Denied is how many of them the draft denies: Pulls plus Pushes (push
	// and delete).
	Denied int `json:"denied"`
	Pulls  int `json:"pulls"`
	Pushes int `json:"pushes"`
	// Users is how many distinct signed-in users made the denied requests;
	// Anonymous counts denied requests without a user.
	Users     int             `json:"users"`
	Anonymous int             `json:"anonymous,omitempty"`
	TopHosts  []PreviewCount  `json:"topHosts"`
	TopImages []PreviewCount  `json:"topImages"`
	TopUsers  []PreviewCount  `json:"topUsers"`
	Samples   []PreviewSample `json:"samples"`
	// Truncated: the window held more requests than one preview examines;
	// the newest were examined.
	Truncated bool   `json:"truncated,omitempty"`
	Summary   string `json:"summary"`
}

// PreviewCount is a name and how many denied requests it had.
type PreviewCount struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// PreviewSample is one request the draft would deny, with the draft's reason.
type PreviewSample struct {
	Time   time.Time `json:"time"`
	User   string    `json:"user,omitempty"`
	Host   string    `json:"host"`
	Port   int       `json:"port,omitempty"`
	Image  string    `json:"image,omitempty"`
	Action string    `json:"action,omitempty"`
	Rule   string    `json:"rule"`
	Reason string    `json:"reason"`
}

// Preview decides every request that org's gateways allowed in the last
// seven days again with draft, and reports those it would deny. Owners and
// members of org may preview; the draft is validated like a Save & Apply but
// nothing is stored.
func (s *Server) Preview(ctx context.Context, who Principal, org string, draft policy.Policy) (PreviewResult, error) {
	if who.Kind == store.TokenGateway || who.Org != org {
		return PreviewResult{}, errForbidden(fmt.Sprintf("your token is for organization %q, not %q", who.Org, org))
	}
	if draft.Org == "" {
		draft.Org = org
	}
	if draft.Org != org {
		return PreviewResult{}, &policy.ValidationError{Errors: []policy.FieldError{{
			Field: "org", Message: fmt.Sprintf("the policy names organization %q, but it is being previewed for %q", draft.Org, org)}}}
	}
	if err := draft.Validate(s.limits); err != nil {
		return PreviewResult{}, err
	}
	cat, err := s.effectiveCatalog(ctx, org)
	if err != nil {
		return PreviewResult{}, err
	}
	compiled, err := policy.Compile(draft, cat)
	if err != nil {
		return PreviewResult{}, fmt.Errorf("compile draft policy: %w", err)
	}
	members, err := s.store.ListMembers(ctx, org)
	if err != nil {
		return PreviewResult{}, s.storeErr(err, "organization "+org)
	}
	owners := make(map[string]bool, len(members))
	for _, m := range members {
		owners[m.Username] = m.Role == store.RoleOwner
	}

	now := s.now()
	t := newPreviewTally(org, now.Add(-previewWindow), now)
	allowed := true
	var before int64
	for {
		ds, err := s.store.ListDecisions(ctx, store.DecisionFilter{Org: org, Allowed: &allowed,
			Since: t.res.Since, Until: t.res.Until, Before: before, Limit: previewPage})
		if err != nil {
			return PreviewResult{}, fmt.Errorf("read decision log of org %q: %w", org, err)
		}
		for _, d := range ds {
			if t.res.Examined == maxPreviewDecisions {
				t.res.Truncated = true
				break
			}
			t.res.Examined++
			dec := compiled.Decide(requestOf(d, owners[d.User]))
			if !dec.Allowed {
				t.deny(d, dec)
			}
		}
		if t.res.Truncated || len(ds) < previewPage {
			break
		}
		before = ds[len(ds)-1].ID
		if err := ctx.Err(); err != nil {
			return PreviewResult{}, err
		}
	}
	return t.result(), nil
}

// requestOf rebuilds the policy request a decision was made for.
func requestOf(d store.DecisionRecord, owner bool) policy.Request {
	r := policy.Request{Host: d.Host, Repository: repositoryOf(d), Action: policy.Action(d.Action), Owner: owner}
	if d.Port > 0 && d.Port <= 65535 {
		r.Port = uint16(d.Port)
	}
	return r
}

// repositoryOf reads the repository out of a logged image, which gateways
// write as a full reference ("docker.io/library/alpine"). Anything that does
// not parse is taken as the repository itself: for Docker Hub it then
// classifies as community, which errs towards reporting a denial.
func repositoryOf(d store.DecisionRecord) string {
	if d.Image == "" {
		return ""
	}
	if ref, err := ociref.ParseReference(d.Image); err == nil {
		return ref.Repository
	}
	return strings.TrimPrefix(d.Image, d.Host+"/")
}

// imageName is an image without tag or digest, for counting.
func imageName(d store.DecisionRecord) string {
	if d.Image == "" {
		return ""
	}
	if ref, err := ociref.ParseReference(d.Image); err == nil {
		ref.Tag, ref.Digest = "", ""
		return ref.String()
	}
	return d.Image
}

type previewTally struct {
	res    PreviewResult
	hosts  map[string]int
	images map[string]int
	users  map[string]int
}

func newPreviewTally(org string, since, until time.Time) *previewTally {
	return &previewTally{
		res:    PreviewResult{Org: org, Since: since, Until: until},
		hosts:  make(map[string]int),
		images: make(map[string]int),
		users:  make(map[string]int),
	}
}

func (t *previewTally) deny(d store.DecisionRecord, dec policy.Decision) {
	t.res.Denied++
	switch policy.Action(d.Action) {
	case policy.ActionPush, policy.ActionDelete:
		t.res.Pushes++
	default:
		t.res.Pulls++
	}
	t.hosts[hostLabel(d.Host, d.Port)]++
	if img := imageName(d); img != "" {
		t.images[img]++
	}
	if d.User == "" {
		t.res.Anonymous++
	} else {
		t.users[d.User]++
	}
	if len(t.res.Samples) < previewSamples {
		t.res.Samples = append(t.res.Samples, PreviewSample{Time: d.Time, User: d.User, Host: d.Host, Port: d.Port,
			Image: d.Image, Action: d.Action, Rule: dec.Rule, Reason: dec.Reason})
	}
}

// hostLabel shows a host with its port unless that is HTTPS's, which nearly
// every registry uses.
func hostLabel(host string, port int) string {
	if port <= 0 || port > 65535 || port == 443 {
		return host
	}
	return policy.JoinHostPort(host, uint16(port))
}

func (t *previewTally) result() PreviewResult {
	r := t.res
	r.Users = len(t.users)
	r.TopHosts = topCounts(t.hosts)
	r.TopImages = topCounts(t.images)
	r.TopUsers = topCounts(t.users)
	if r.Samples == nil {
		r.Samples = []PreviewSample{}
	}
	r.Summary = previewSummary(r)
	return r
}

// topCounts returns the largest counts, ties by name so the answer is stable.
func topCounts(m map[string]int) []PreviewCount {
	out := make([]PreviewCount, 0, len(m))
	for k, v := range m {
		out = append(out, PreviewCount{Name: k, Count: v})
	}
	slices.SortFunc(out, func(a, b PreviewCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(out) > previewTop {
		out = out[:previewTop]
	}
	return out
}

func previewSummary(r PreviewResult) string {
	const window = "in the last 7 days"
	if r.Examined == 0 {
		return "No allowed requests were recorded " + window + ", so there is nothing to compare this change against."
	}
	if r.Denied == 0 {
		return fmt.Sprintf("This change would not have denied any of the %s allowed %s.",
			plural(r.Examined, "request"), window)
	}
	var what []string
	if r.Pulls > 0 {
		what = append(what, plural(r.Pulls, "pull"))
	}
	if r.Pushes > 0 {
		if r.Pushes == 1 {
			what = append(what, "1 push")
		} else {
			what = append(what, fmt.Sprintf("%d pushes", r.Pushes))
		}
	}
	var who []string
	if r.Users > 0 {
		who = append(who, plural(r.Users, "user"))
	}
	if r.Anonymous > 0 {
		who = append(who, "anonymous clients")
	}
	s := fmt.Sprintf("This change would have denied %s by %s %s", strings.Join(what, " and "), strings.Join(who, " and "), window)
	if r.Truncated {
		s += fmt.Sprintf(" (counting the newest %s only)", plural(r.Examined, "request"))
	}
	return s + "."
}

// handlePreview answers which recent requests a draft policy would deny.
func (s *Server) handlePreview(w http.ResponseWriter, r *http.Request) {
	who, _ := principalFrom(r.Context())
	org := r.PathValue("org")
	if who.Kind == store.TokenGateway || who.Org != org { // before decoding: outsiders learn nothing from validation
		writeError(w, errForbidden(fmt.Sprintf("your token is for organization %q, not %q", who.Org, org)))
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	draft, err := policy.Decode(body)
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := s.Preview(r.Context(), who, org, draft)
	if err != nil {
		s.logUnexpected(r, err)
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
