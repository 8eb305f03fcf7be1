package pgtest

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func queryString(t *testing.T, dsn, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDSNGivesFreshDatabases(t *testing.T) {
	a, b := DSN(t), DSN(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
	if v := queryString(t, a, `SHOW server_version`); !strings.HasPrefix(v, "15.") {
		t.Errorf("server version %q, want 15.x", v)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE t (x int)`); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, b, `SELECT count(*)::text FROM pg_tables WHERE tablename = 't'`); got != "0" {
		t.Errorf("a table made in one database shows in another")
	}
	if user := queryString(t, a, `SELECT current_user`); user != "postgres" {
		t.Errorf("connected as %q, want postgres", user)
	}
}

func TestStartStop(t *testing.T) {
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	s, err := Start("")
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	ctx := context.Background()
	name, dsn, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, dsn, `SELECT current_database()`); got != name {
		t.Errorf("current_database() = %q, want %q", got, name)
	}
	// A connection still open does not stop the drop.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DropDatabase(ctx, name); err != nil {
		t.Fatalf("drop with a connection open: %v", err)
	}
	conn.Close(ctx)

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("server directory %s still there after Stop: %v", dir, err)
	}
	ctx2, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c, err := pgx.Connect(ctx2, s.DSN("postgres")); err == nil {
		c.Close(ctx)
		t.Error("the server still accepts connections after Stop")
	}
}

func TestStartInUnreachableDir(t *testing.T) {
	if err := Available(); err != nil || os.Geteuid() != 0 {
		t.Skip("needs the PostgreSQL binaries and root (only root hands the server to another user)")
	}
	// t.TempDir is 0700 root: the postgres user cannot reach it, and the
	// error must say what went wrong rather than hang.
	_, err := Start(t.TempDir())
	if err == nil {
		t.Fatal("Start in a directory the postgres user cannot reach succeeded")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "initdb") {
		t.Errorf("error does not name the failing step: %v", err)
	}
}
