package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/regward/regward/internal/ociref"
	"github.com/regward/regward/internal/policy"
)

// CheckOptions say what to check and against what.
type CheckOptions struct {
	Images []string
	User   string // "" for the signed-in user; others need the server and an owner
	Action string // "" for pull
	// Offline decides with the cached policy without asking the server.
	Offline bool
	// Owner is whether the signed-in user owns the org, for decisions
	// made locally (owners bypass image rules).
	Owner bool
	Cache SnapshotCache
}

// CheckOutcome is one image's result: a decision or an error.
type CheckOutcome struct {
	Image  string       `json:"image"` // as given
	Result *CheckResult `json:"result,omitempty"`
	Err    string       `json:"error,omitempty"`
}

// CheckReport is the result of a check, and where it was decided.
type CheckReport struct {
	Server string `json:"server"`
	Org    string `json:"org"`
	// Source is "server", or "cache" when the cached policy decided.
	Source string `json:"source"`
	// Fallback says why the server was not asked (it did not answer).
	Fallback  string          `json:"fallback,omitempty"`
	Cached    *CachedSnapshot `json:"-"`
	CacheVer  int64           `json:"cachedVersion,omitempty"`
	CacheTime time.Time       `json:"cachedAt,omitzero"`
	Outcomes  []CheckOutcome  `json:"results"`
}

// Check decides each image: by the server, or, when it cannot be reached
// (or Offline), by the cached policy compiled here, saying so. References
// are parsed here first, so a malformed one reads the same either way.
// The error is for failures that leave no result at all.
func Check(ctx context.Context, api *API, org string, o CheckOptions) (CheckReport, error) {
	if len(o.Images) == 0 {
		return CheckReport{}, errors.New("name at least one image, e.g. regward check nginx:latest")
	}
	action := o.Action
	switch policy.Action(action) {
	case "", policy.ActionPull, policy.ActionPush, policy.ActionDelete:
	default:
		return CheckReport{}, fmt.Errorf("--action %q: use pull, push or delete", action)
	}
	rep := CheckReport{Server: api.Server, Org: org, Source: "server"}
	var compiled *policy.Compiled
	useCache := func(why string) error {
		if o.User != "" {
			return fmt.Errorf("%s, and checking for another user needs the server", why)
		}
		cs, err := o.Cache.Load(api.Server, org)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s, and no policy of organization %s is cached (run `regward login`)", why, org)
		}
		if err != nil {
			return fmt.Errorf("%s, and the cached policy is unusable: %w", why, err)
		}
		c, err := cs.Compile()
		if err != nil {
			return fmt.Errorf("%s, and the cached policy does not compile: %w", why, err)
		}
		compiled = c
		rep.Source, rep.Fallback, rep.Cached = "cache", why, &cs
		rep.CacheVer, rep.CacheTime = cs.Snapshot.Version, cs.FetchedAt
		return nil
	}
	if o.Offline {
		if err := useCache("--offline"); err != nil {
			return rep, err
		}
	}
	for _, img := range o.Images {
		out := CheckOutcome{Image: img}
		ref, err := ociref.ParseReference(img)
		if err != nil {
			out.Err = fmt.Sprintf("%q: %v", img, err)
			rep.Outcomes = append(rep.Outcomes, out)
			continue
		}
		if compiled == nil {
			res, err := api.Check(ctx, org, img, o.User, action)
			switch {
			case err == nil:
				out.Result = &res
				rep.Outcomes = append(rep.Outcomes, out)
				continue
			case Unreachable(err):
				if cerr := useCache(fmt.Sprintf("the control plane %s did not answer (%v)", api.Server, rootCause(err))); cerr != nil {
					return rep, cerr
				}
			default:
				out.Err = fmt.Sprintf("%q: %v", img, err)
				rep.Outcomes = append(rep.Outcomes, out)
				continue
			}
		}
		out.Result = decideLocally(compiled, ref, action, o.Owner, rep.CacheVer)
		rep.Outcomes = append(rep.Outcomes, out)
	}
	return rep, nil
}

func decideLocally(c *policy.Compiled, ref ociref.Reference, action string, owner bool, version int64) *CheckResult {
	if action == "" {
		action = string(policy.ActionPull)
	}
	d := c.Decide(policy.Request{Host: ref.Host, Port: ref.Port, Repository: ref.Repository, Action: policy.Action(action), Owner: owner})
	return &CheckResult{Decision: d, Image: ref.String(), Action: action, Version: version}
}

// ExitCode is 0 when every image is allowed, 1 when any is denied, 2 when
// any could not be decided.
func (r CheckReport) ExitCode() int {
	code := 0
	for _, o := range r.Outcomes {
		switch {
		case o.Err != "":
			return 2
		case !o.Result.Allowed:
			code = 1
		}
	}
	return code
}

// Render writes the report for people. now dates the cache's age.
func (r CheckReport) Render(w io.Writer, now time.Time) {
	if r.Source == "cache" {
		fmt.Fprintf(w, "%s: decided with the cached policy of organization %s (version %d, fetched %s, %s ago)\n\n",
			r.Fallback, r.Org, r.CacheVer, r.CacheTime.UTC().Format(time.RFC3339), Age(now.Sub(r.CacheTime)))
	}
	for i, o := range r.Outcomes {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if o.Err != "" {
			fmt.Fprintf(w, "%s: error\n  %s\n", o.Image, o.Err)
			continue
		}
		res := o.Result
		verdict := "denied"
		if res.Allowed {
			verdict = "allowed"
		}
		fmt.Fprintf(w, "%s: %s\n", res.Image, verdict)
		if res.Category != "" {
			fmt.Fprintf(w, "  category: %s\n", res.Category)
		}
		fmt.Fprintf(w, "  rule:     %s\n", res.Rule)
		fmt.Fprintf(w, "  reason:   %s\n", res.Reason)
		if res.Action != "" && res.Action != string(policy.ActionPull) {
			fmt.Fprintf(w, "  action:   %s\n", res.Action)
		}
	}
	if n := len(r.Outcomes); n > 1 {
		var allowed, denied, failed int
		for _, o := range r.Outcomes {
			switch {
			case o.Err != "":
				failed++
			case o.Result.Allowed:
				allowed++
			default:
				denied++
			}
		}
		parts := []string{fmt.Sprintf("%d allowed", allowed), fmt.Sprintf("%d denied", denied)}
		if failed > 0 {
			parts = append(parts, fmt.Sprintf("%d not checked", failed))
		}
		fmt.Fprintf(w, "\n%s\n", strings.Join(parts, ", "))
	}
}

// rootCause drops the request description of a transport error: "dial tcp
// 127.0.0.1:8080: connect: connection refused" says it all.
func rootCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
