package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/regward/regward/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout bounds how long a connection waits for another process that
// holds the database lock (a second regward process on the same file, or a
// WAL checkpoint); writers of this process never wait on each other here
// because they share one connection.
const busyTimeout = 10 * time.Second

// Store is a store.Store kept in one SQLite file.
type Store struct {
	w *sql.DB // exactly one connection: writes queue in database/sql, never on SQLITE_BUSY
	r *sql.DB // read-only connections; WAL lets them read while the writer writes
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the database at path and brings its
// schema up to date.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open sqlite store: the database path is empty")
	}
	if strings.ContainsRune(path, '?') {
		// The driver splits its parameters off at the first '?'.
		return nil, fmt.Errorf("open sqlite store: database path %q contains '?'", path)
	}
	if err := migrate(ctx, path); err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	w, err := openDB(ctx, path, false, 1)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	r, err := openDB(ctx, path, true, max(4, runtime.NumCPU()))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return &Store{w: w, r: r}, nil
}

// dsn builds the driver's connection string. Pragmas go in the DSN so that
// every connection the pool opens gets them, not just the first.
func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		// FULL: a Save & Apply the API reported as done survives a power cut.
		q.Add("_pragma", "synchronous(FULL)")
		// IMMEDIATE takes the write lock at BEGIN, so a transaction never
		// fails half-way when it upgrades from reading to writing.
		q.Set("_txlock", "immediate")
	}
	return path + "?" + q.Encode()
}

func openDB(ctx context.Context, path string, readOnly bool, conns int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path, readOnly))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// migrate applies the embedded migrations through a handle of its own, so
// that goose's use of connections cannot starve the single write connection.
func migrate(ctx context.Context, path string) error {
	db, err := openDB(ctx, path, false, 1)
	if err != nil {
		return err
	}
	defer db.Close()
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping checks that both pools can reach the database.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite store: %w", err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite store: %w", err)
	}
	return nil
}

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// write runs fn in one write transaction; what names the change for errors.
func (s *Store) write(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // fn's error is the one that explains what went wrong
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// insertActivity records act in tx. An entry without a kind records
// nothing: callers pass a zero Activity for changes not tied to an org.
func insertActivity(ctx context.Context, tx *sql.Tx, act store.Activity, org string) error {
	act, ok := store.ActivityToRecord(act, org)
	if !ok {
		return nil
	}
	var diff any
	if len(act.Diff) > 0 {
		diff = string(act.Diff)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO activity (org, occurred_at, actor, kind, target, summary, diff, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		act.Org, micros(store.TimeOrNow(act.Time)), act.Actor, act.Kind, act.Target, act.Summary, diff, act.Version)
	if err != nil {
		return fmt.Errorf("record activity %q: %w", act.Kind, err)
	}
	return nil
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// queryRower is a *sql.DB or a *sql.Tx.
type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// exists reports whether a row matches query.
func exists(ctx context.Context, q queryRower, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func orgExists(ctx context.Context, q queryRower, org string) error {
	ok, err := exists(ctx, q, `SELECT 1 FROM orgs WHERE name = ?`, org)
	return store.CheckFound("org", org, ok, err)
}

func userExists(ctx context.Context, q queryRower, username string) error {
	ok, err := exists(ctx, q, `SELECT 1 FROM users WHERE username = ?`, username)
	return store.CheckFound("user", username, ok, err)
}

// rowsChanged reports how many rows an exec touched.
func rowsChanged(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("rows affected: %w", err)
	}
	return n, nil
}

// where accumulates the conditions of a filtered listing.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}
