package scale

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regward/regward/internal/policy"
)

// Two owners edit the same version of the policy and press Save & Apply at
// the same moment, each on a different replica: exactly one change is
// applied, the other owner is told of the conflict with the version to
// reload, and the activity log holds the winning change only.
func TestConflictingAppliesOnTwoReplicas(t *testing.T) {
	c := startCluster(t, 2)
	a, b := c.replicas[0], c.replicas[1]
	admin := newClient(a.url, c.adminToken)
	olivia := newClient(b.url, addMember(t, admin, b.url, "olivia", "owner"))
	owners := []struct {
		name string
		c    *client
	}{{"admin", admin}, {"olivia", olivia}}

	const rounds = 8
	type outcome struct{ winner, winHost, loseHost string }
	byVersion := map[int64]outcome{}
	wins := map[string]int{}
	for round := 1; round <= rounds; round++ {
		base, v := admin.policyOf(t)
		// Olivia reads the same version on her replica (and her client
		// holds a warm connection, so that both PUTs leave at once).
		if _, vb := olivia.policyOf(t); vb != v {
			t.Fatalf("round %d: replica b serves version %d, replica a %d", round, vb, v)
		}
		hosts := []string{fmt.Sprintf("round%d-admin.example", round), fmt.Sprintf("round%d-olivia.example", round)}
		res := make([]response, 2)
		errs := make([]error, 2)
		ctx := testContext(t, 30*time.Second)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range owners {
			p := base.Clone()
			p.RegistryAccess.Registries = append(p.RegistryAccess.Registries, policy.Registry{Host: hosts[i]})
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i], errs[i] = owners[i].c.apply(ctx, p, v)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %s's apply: %v", round, owners[i].name, err)
			}
		}

		winner := -1
		for i := range res {
			if res[i].status == http.StatusOK {
				if winner >= 0 {
					t.Fatalf("round %d: both applies of version %d succeeded:\n%s\n%s", round, v, res[0], res[1])
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: neither apply succeeded:\nadmin: %s\nolivia: %s", round, res[0], res[1])
		}
		loser := 1 - winner
		var won applyResult
		if err := json.Unmarshal(res[winner].body, &won); err != nil || !won.Applied || won.Version != v+1 {
			t.Fatalf("round %d: winning answer: %v %s, want applied version %d", round, err, res[winner].body, v+1)
		}
		if res[loser].status != http.StatusConflict {
			t.Fatalf("round %d: the losing apply answered %s, want 409", round, res[loser])
		}
		prob, err := decodeProblem(res[loser])
		if err != nil {
			t.Fatalf("round %d: 409 body: %v\n%s", round, err, res[loser].body)
		}
		if prob.Version != won.Version || !strings.HasSuffix(prob.Type, "/conflict") {
			t.Errorf("round %d: 409 names version %d (type %q), want the winner's version %d", round, prob.Version, prob.Type, won.Version)
		}

		// Both replicas now serve the winning policy, and only it.
		for _, cl := range []*client{admin, olivia} {
			p, ver := cl.policyOf(t)
			if ver != won.Version || !listsHost(p, hosts[winner]) || listsHost(p, hosts[loser]) {
				t.Errorf("round %d: %s serves version %d with %v; want version %d with %s and without %s",
					round, cl.base, ver, p.RegistryAccess.Registries, won.Version, hosts[winner], hosts[loser])
			}
		}
		byVersion[won.Version] = outcome{owners[winner].name, hosts[winner], hosts[loser]}
		wins[owners[winner].name]++
	}
	// The losers refused by the database's version check rather than by the
	// replica's own read before it (regward_policy_applies_total{result=
	// "conflict"}): the closer the race, the more of them.
	inStore := 0
	for _, r := range c.replicas {
		inStore += metricValue(t, r.url, `regward_policy_applies_total{result="conflict"}`)
	}
	t.Logf("%d rounds of simultaneous applies on two replicas: wins %v; %d losers refused by the database's version check",
		rounds, wins, inStore)

	// The activity log, read on either replica, has exactly the winning
	// changes: one entry per applied version, by the winner, with the
	// winner's host in its diff and never the loser's.
	for _, cl := range []*client{admin, olivia} {
		items := cl.activity(t, "policy.apply")
		if len(items) != rounds {
			t.Fatalf("%s: %d policy.apply entries, want %d: %+v", cl.base, len(items), rounds, items)
		}
		var seen []int64
		for _, it := range items {
			o, ok := byVersion[it.Version]
			if !ok || slices.Contains(seen, it.Version) {
				t.Errorf("%s: unexpected or repeated entry for version %d: %+v", cl.base, it.Version, it)
				continue
			}
			seen = append(seen, it.Version)
			if it.Actor != o.winner || !strings.Contains(string(it.Diff), o.winHost) || strings.Contains(string(it.Diff), o.loseHost) {
				t.Errorf("%s: entry for version %d by %s with diff %s; want by %s adding %s and not %s",
					cl.base, it.Version, it.Actor, it.Diff, o.winner, o.winHost, o.loseHost)
			}
		}
	}
}

func listsHost(p policy.Policy, host string) bool {
	for _, r := range p.RegistryAccess.Registries {
		if r.Host == host {
			return true
		}
	}
	return false
}

// metricValue reads one sample of a replica's /metrics (0 when absent).
func metricValue(t *testing.T, base, sample string) int {
	t.Helper()
	r := newClient(base, "").must(t, http.StatusOK, "GET", "/metrics", nil, nil)
	for _, l := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", sample, err)
			}
			return int(f)
		}
	}
	return 0
}
