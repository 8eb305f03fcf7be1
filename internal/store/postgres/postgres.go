package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/regward/regward/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockID is regward's own advisory lock key (crc32 of
// "regward-migrations"), so it never waits on another goose user's lock in
// a shared database.
const migrationLockID int64 = 0x55020123

// Store is a store.Store and store.Watcher on a PostgreSQL database.
type Store struct {
	pool   *pgxpool.Pool
	listen *pgx.ConnConfig // template for the watchers' dedicated connections

	closed    context.Context // done once Close is called: watchers stop
	markClose context.CancelFunc
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Watcher = (*Store)(nil)
)

// Open connects to the database named by dsn and brings its schema up to
// date. Errors never repeat the DSN, which may hold a password.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := migrate(ctx, cfg.ConnConfig.Copy()); err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	closed, markClose := context.WithCancel(context.Background())
	return &Store{pool: pool, listen: cfg.ConnConfig.Copy(), closed: closed, markClose: markClose}, nil
}

// migrate applies the embedded migrations while holding a session-level
// advisory lock: replicas that start together take turns, and the later
// ones find nothing left to do.
func migrate(ctx context.Context, cfg *pgx.ConnConfig) error {
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	// Retry every second for up to five minutes: the default five-second
	// period would hold back every replica but the first for that long.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	// The common case, a replica restarting on a current schema, needs no
	// lock: HasPending only reads the version table.
	if pending, err := p.HasPending(ctx); err == nil && !pending {
		return nil
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres store: %w", err)
	}
	return nil
}

// Close stops the store's watchers and closes the pool.
func (s *Store) Close() error {
	s.markClose()
	s.pool.Close()
	return nil
}

// write runs fn in one READ COMMITTED transaction; what names the change
// for errors.
func (s *Store) write(ctx context.Context, what string, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(ctx) // fn's error is the one that explains what went wrong
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// insertActivity records act in tx. An entry without a kind records
// nothing: callers pass a zero Activity for changes not tied to an org.
func insertActivity(ctx context.Context, tx pgx.Tx, act store.Activity, org string) error {
	act, ok := store.ActivityToRecord(act, org)
	if !ok {
		return nil
	}
	var diff any
	if len(act.Diff) > 0 {
		diff = string(act.Diff)
	}
	_, err := tx.Exec(ctx, `INSERT INTO activity (org, occurred_at, actor, kind, target, summary, diff, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		act.Org, store.TimeOrNow(act.Time), act.Actor, act.Kind, act.Target, act.Summary, diff, act.Version)
	if err != nil {
		return fmt.Errorf("record activity %q: %w", act.Kind, err)
	}
	return nil
}

// storedPtr is store.StoredTime of an optional time.
func storedPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := store.StoredTime(*t)
	return &u
}

// rowExists reports whether query returns a row.
func rowExists(ctx context.Context, q pgxQuerier, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRow(ctx, query, args...).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// pgxQuerier is the pool or a transaction.
type pgxQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func orgExists(ctx context.Context, q pgxQuerier, org string) error {
	ok, err := rowExists(ctx, q, `SELECT 1 FROM orgs WHERE name = $1`, org)
	return store.CheckFound("org", org, ok, err)
}

func userExists(ctx context.Context, q pgxQuerier, username string) error {
	ok, err := rowExists(ctx, q, `SELECT 1 FROM users WHERE username = $1`, username)
	return store.CheckFound("user", username, ok, err)
}

// foreignKeyMissing turns a foreign-key violation (the org or user went away
// between our check and the insert) into ErrNotFound.
func foreignKeyMissing(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return fmt.Errorf("%s: %w", pgErr.Detail, store.ErrNotFound)
	}
	return err
}

// where accumulates the conditions of a filtered listing, numbering the
// placeholders as it goes.
type where struct {
	conds []string
	args  []any
}

// add appends a condition whose one placeholder is written "$%d".
func (w *where) add(cond string, arg any) {
	w.args = append(w.args, arg)
	w.conds = append(w.conds, fmt.Sprintf(cond, len(w.args)))
}

// addConst appends a condition without arguments.
func (w *where) addConst(cond string) {
	w.conds = append(w.conds, cond)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// limitClause appends the page size as the last argument.
func (w *where) limitClause(n int) string {
	w.args = append(w.args, n)
	return fmt.Sprintf(" LIMIT $%d", len(w.args))
}
