package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regward/regward/internal/pgtest"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
	"github.com/regward/regward/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func openDSN(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openDSN(t, pgtest.DSN(t)) })
}

// TestReplicasStartTogether: replicas opening one fresh database at once
// take turns on the migration lock; all succeed and the schema is applied
// once.
func TestReplicasStartTogether(t *testing.T) {
	dsn := pgtest.DSN(t)
	const n = 6
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(context.Background(), dsn)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var applied int
	err := stores[0].pool.QueryRow(context.Background(), `SELECT count(*) FROM goose_db_version WHERE version_id = 1 AND is_applied`).Scan(&applied)
	if err != nil {
		t.Fatal(err)
	}
	if applied != 1 {
		t.Errorf("migration 1 recorded %d times, want 1", applied)
	}
}

// TestReplicasApplyConcurrently races Save & Apply from two replicas (two
// pools) on one org: exactly one wins per version.
func TestReplicasApplyConcurrently(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	if err := a.CreateOrg(ctx, "acme", policy.Policy{Org: "acme"}, store.Activity{Kind: store.KindOrgCreate}); err != nil {
		t.Fatal(err)
	}
	const per = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	start := make(chan struct{})
	for _, s := range []*Store{a, b} {
		for i := range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := s.ApplyPolicy(ctx, "acme", policy.Policy{Org: "acme"}, 1,
					store.Activity{Kind: store.KindPolicyApply, Actor: fmt.Sprint(i)})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrConflict):
					conflicts++
				default:
					t.Error(err)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	if wins != 1 || conflicts != 2*per-1 {
		t.Errorf("%d wins and %d conflicts, want 1 and %d", wins, conflicts, 2*per-1)
	}
	acts, err := b.ListActivity(ctx, store.ActivityFilter{Org: "acme", Kinds: []string{store.KindPolicyApply}})
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 1 {
		t.Errorf("%d policy.apply entries, want 1", len(acts))
	}
}

func TestOpenErrorHidesPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback refuses at once.
	_, err := Open(ctx, "postgres://regward:s3cret-pw@127.0.0.1:1/regward?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("the error repeats the password: %v", err)
	}
	if _, err := Open(ctx, "postgres://%zz"); err == nil {
		t.Error("Open of a malformed DSN succeeded")
	}
}

func TestParsePayload(t *testing.T) {
	tests := []struct {
		in      string
		org     string
		version int64
		ok      bool
	}{
		{"acme:12", "acme", 12, true},
		{"a:b:3", "a:b", 3, true},
		{"acme:", "", 0, false},
		{":3", "", 0, false},
		{"acme", "", 0, false},
		{"acme:x", "", 0, false},
		{"acme:0", "", 0, false},
		{"acme:-1", "", 0, false},
	}
	for _, tc := range tests {
		org, v, ok := parsePayload(tc.in)
		if org != tc.org || v != tc.version || ok != tc.ok {
			t.Errorf("parsePayload(%q) = %q, %d, %v; want %q, %d, %v", tc.in, org, v, ok, tc.org, tc.version, tc.ok)
		}
	}
}
