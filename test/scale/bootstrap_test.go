package scale

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regward/regward/internal/pgtest"
	"github.com/regward/regward/internal/regwardtest"
)

// A Kubernetes Deployment starts all its replicas at once, so on a new
// database several replicas run their first start together: exactly one of
// them creates the org and its owner, and every one becomes ready. The race
// is short, so it runs a few times on fresh databases.
func TestReplicasStartTogetherOnEmptyDatabase(t *testing.T) {
	if err := pgtest.Available(); err != nil {
		requireEnv(t, "%v", err)
	}
	for round := 1; round <= 4; round++ {
		t.Run(fmt.Sprintf("round%d", round), startTogether)
	}
}

func startTogether(t *testing.T) {
	c := &cluster{dsn: pgtest.DSN(t)}
	const n = 3
	for i := range n {
		r := &replica{name: "replica-" + string(rune('a'+i)), listen: regwardtest.FreeAddr(t), data: t.TempDir(), dsn: c.dsn}
		r.url = "http://" + r.listen
		c.replicas = append(c.replicas, r)
	}
	for _, r := range c.replicas {
		r.launch(t)
	}
	var token string
	created := 0
	for _, r := range c.replicas {
		r.WaitHTTP(t, r.url+"/readyz", 60*time.Second)
		b, err := os.ReadFile(filepath.Join(r.data, "admin-token"))
		switch {
		case err == nil:
			token = strings.TrimSpace(string(b))
			created++
		case !errors.Is(err, fs.ErrNotExist):
			t.Fatal(err)
		}
		if got := strings.Count(r.Output(), "regward first run: created organization"); got > 1 {
			t.Errorf("%s announced the first run %d times", r.name, got)
		}
	}
	if created != 1 {
		t.Fatalf("%d replicas bootstrapped the database (wrote an admin token), want exactly 1", created)
	}
	// The one owner token works on every replica, and the database holds one
	// org with one owner, created once.
	for _, r := range c.replicas {
		cl := newClient(r.url, token)
		resp := cl.must(t, http.StatusOK, "GET", "/api/v1/orgs/"+org+"/members", nil, nil)
		var page struct {
			Members []struct {
				Username string `json:"username"`
				Role     string `json:"role"`
			} `json:"members"`
		}
		if err := json.Unmarshal(resp.body, &page); err != nil {
			t.Fatalf("decode members: %v\n%s", err, resp.body)
		}
		members := page.Members
		if len(members) != 1 || members[0].Username != "admin" || members[0].Role != "owner" {
			t.Errorf("%s: members %+v, want admin as the only owner", r.name, members)
		}
		if items := cl.activity(t, "org.create"); len(items) != 1 {
			t.Errorf("%s: %d org.create entries, want 1", r.name, len(items))
		}
	}
}
