package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regward/regward/internal/store"
	"github.com/regward/regward/internal/store/storetest"
)

func open(t *testing.T) store.Store {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "regward.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, open)
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "regward.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, store.User{Username: "alice", PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A second Open finds the schema current and the data in place.
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.GetUser(ctx, "alice"); err != nil {
		t.Fatalf("user after reopen: %v", err)
	}
}

func TestPragmas(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "regward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, db := range []struct {
		name string
		q    queryRower
	}{{"write pool", s.w}, {"read pool", s.r}} {
		var mode string
		var fk, timeout int
		if err := db.q.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.q.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := db.q.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&timeout); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || fk != 1 || timeout != int(busyTimeout.Milliseconds()) {
			t.Errorf("%s: journal_mode %q, foreign_keys %d, busy_timeout %d; want wal, 1, %d", db.name, mode, fk, timeout, busyTimeout.Milliseconds())
		}
	}
	// The read pool refuses writes, so a write cannot slip past the writer's queue.
	if _, err := s.r.ExecContext(ctx, `INSERT INTO orgs (name, created_at) VALUES ('x', 0)`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

// TestTwoStoresOneFile: two processes on one data directory (serve and a CLI
// command) wait for each other through the busy timeout instead of failing.
func TestTwoStoresOneFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "regward.db")
	a, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 200
	errs := make(chan error, 2*n)
	for _, s := range []*Store{a, b} {
		go func() {
			for i := range n {
				errs <- s.AppendActivity(ctx, store.Activity{Org: "acme", Kind: store.KindSignIn, Actor: fmt.Sprint(i)})
			}
		}()
	}
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got, err := a.ListActivity(ctx, store.ActivityFilter{Limit: 10 * n})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2*n {
		t.Errorf("%d entries, want %d", len(got), 2*n)
	}
}

// TestFilterQueriesUseIndexes keeps the console's filters off full scans.
func TestFilterQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "regward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	queries := map[string]string{
		"activity by org":       `SELECT id FROM activity WHERE org = 'acme' ORDER BY id DESC LIMIT 100`,
		"activity by org, kind": `SELECT id FROM activity WHERE org = 'acme' AND kind IN ('signin') ORDER BY id DESC LIMIT 100`,
		"activity by actor":     `SELECT id FROM activity WHERE actor = 'alice' ORDER BY id DESC LIMIT 100`,
		"activity by time":      `SELECT id FROM activity WHERE occurred_at >= 5 AND occurred_at < 9 ORDER BY id DESC LIMIT 100`,
		"decisions by org":      `SELECT id FROM decisions WHERE org = 'acme' ORDER BY id DESC LIMIT 100`,
		"decisions by user":     `SELECT id FROM decisions WHERE org = 'acme' AND username = 'u' ORDER BY id DESC LIMIT 100`,
		"decisions by host":     `SELECT id FROM decisions WHERE org = 'acme' AND host = 'h' ORDER BY id DESC LIMIT 100`,
		"decisions denied":      `SELECT id FROM decisions WHERE org = 'acme' AND allowed = 0 ORDER BY id DESC LIMIT 100`,
		"decisions prune":       `DELETE FROM decisions WHERE occurred_at < 5`,
		"tokens of an org":      `SELECT id FROM tokens WHERE org = 'acme' AND kind = 'personal'`,
		"orgs of a user":        `SELECT org FROM members WHERE username = 'alice' ORDER BY org`,
	}
	for name, q := range queries {
		rows, err := s.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		t.Logf("%s: %s", name, joined)
		if !strings.Contains(joined, "USING INDEX") && !strings.Contains(joined, "USING COVERING INDEX") {
			t.Errorf("%s: plan %q uses no index", name, joined)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, path := range []string{"", filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"), filepath.Join(t.TempDir(), "what?.db")} {
		if s, err := Open(ctx, path); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", path)
		}
	}
}
