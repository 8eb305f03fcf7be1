package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// GetPolicy returns an org's current policy or ErrNotFound.
func (s *Store) GetPolicy(ctx context.Context, org string) (store.PolicyRecord, error) {
	rec := store.PolicyRecord{Org: org}
	var pj []byte
	err := s.pool.QueryRow(ctx, `SELECT version, policy, updated_at, updated_by FROM policies WHERE org = $1`, org).
		Scan(&rec.Version, &pj, &rec.UpdatedAt, &rec.UpdatedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.PolicyRecord{}, fmt.Errorf("policy of org %q: %w", org, store.ErrNotFound)
	}
	if err != nil {
		return store.PolicyRecord{}, fmt.Errorf("get policy of org %q: %w", org, err)
	}
	if rec.Policy, err = store.DecodePolicy(pj); err != nil {
		return store.PolicyRecord{}, fmt.Errorf("decode policy of org %q: %w", org, err)
	}
	rec.UpdatedAt = rec.UpdatedAt.UTC()
	return rec, nil
}

// ApplyPolicy replaces the org's policy if its version is still
// expectVersion. The version check is in the UPDATE's WHERE clause: under
// READ COMMITTED a second writer blocks on the row, then re-checks the
// clause against the committed row, finds the version moved and updates
// nothing, so two applies of one version cannot both succeed.
func (s *Store) ApplyPolicy(ctx context.Context, org string, p policy.Policy, expectVersion int64, act store.Activity) (store.PolicyRecord, error) {
	what := fmt.Sprintf("apply policy of org %q", org)
	if err := store.CheckActivity(act); err != nil {
		return store.PolicyRecord{}, fmt.Errorf("%s: %w", what, err)
	}
	pj, err := store.EncodePolicy(p)
	if err != nil {
		return store.PolicyRecord{}, fmt.Errorf("%s: encode policy: %w", what, err)
	}
	when := store.TimeOrNow(act.Time)
	rec := store.PolicyRecord{Org: org, Version: expectVersion + 1, Policy: p, UpdatedAt: store.StoredTime(when), UpdatedBy: act.Actor}
	err = s.write(ctx, what, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE policies SET version = version + 1, policy = $1, updated_at = $2, updated_by = $3
			WHERE org = $4 AND version = $5`, string(pj), when, act.Actor, org, expectVersion)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return versionMismatch(ctx, tx, org, expectVersion)
		}
		if err := notify(ctx, tx, map[string]int64{org: rec.Version}); err != nil {
			return err
		}
		act.Version = rec.Version
		return insertActivity(ctx, tx, act, org)
	})
	if err != nil {
		return store.PolicyRecord{}, err
	}
	return rec, nil
}

// versionMismatch explains why an apply matched no row.
func versionMismatch(ctx context.Context, tx pgx.Tx, org string, expect int64) error {
	var cur int64
	err := tx.QueryRow(ctx, `SELECT version FROM policies WHERE org = $1`, org).Scan(&cur)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("org %q: %w", org, store.ErrNotFound)
	}
	if err != nil {
		return err
	}
	return store.VersionConflict(cur, expect)
}

// notifyChannel carries "org:version" for every committed version change.
const notifyChannel = "regward_policy"

// notify queues one notification per org in tx; PostgreSQL delivers them
// when, and only if, tx commits.
func notify(ctx context.Context, tx pgx.Tx, versions map[string]int64) error {
	if len(versions) == 0 {
		return nil
	}
	payloads := make([]string, 0, len(versions))
	for org, v := range versions {
		payloads = append(payloads, org+":"+strconv.FormatInt(v, 10))
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, notifyChannel, payloads); err != nil {
		return fmt.Errorf("notify policy change: %w", err)
	}
	return nil
}

// PolicyVersions returns every org's current version.
func (s *Store) PolicyVersions(ctx context.Context) (map[string]int64, error) {
	rows, _ := s.pool.Query(ctx, `SELECT org, version FROM policies`)
	out, err := collectVersions(rows)
	if err != nil {
		return nil, fmt.Errorf("list policy versions: %w", err)
	}
	return out, nil
}

func collectVersions(rows pgx.Rows) (map[string]int64, error) {
	out := map[string]int64{}
	var org string
	var v int64
	_, err := pgx.ForEachRow(rows, []any{&org, &v}, func() error {
		out[org] = v
		return nil
	})
	return out, err
}

// GetCatalog returns the lists of a scope, empty when the scope has none;
// ErrNotFound for an org that does not exist.
func (s *Store) GetCatalog(ctx context.Context, scope string) (policy.Catalog, error) {
	var cj []byte
	err := s.pool.QueryRow(ctx, `SELECT catalog FROM catalogs WHERE scope = $1`, scope).Scan(&cj)
	if errors.Is(err, pgx.ErrNoRows) {
		if scope != store.ServerScope {
			if err := orgExists(ctx, s.pool, scope); err != nil {
				return policy.Catalog{}, fmt.Errorf("get catalog: %w", err)
			}
		}
		return store.EmptyCatalog(), nil
	}
	if err != nil {
		return policy.Catalog{}, fmt.Errorf("get catalog of scope %q: %w", scope, err)
	}
	c, err := store.DecodeCatalog(cj)
	if err != nil {
		return policy.Catalog{}, fmt.Errorf("decode catalog of scope %q: %w", scope, err)
	}
	return c, nil
}

// SetCatalog replaces a scope's lists and bumps the policy version of every
// org they affect, in one transaction with act and the notifications. For
// an org scope, act records the org's new version.
func (s *Store) SetCatalog(ctx context.Context, scope string, c policy.Catalog, act store.Activity) (map[string]int64, error) {
	what := fmt.Sprintf("set catalog of scope %q", scope)
	if err := store.CheckActivity(act); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	cj, err := store.EncodeCatalog(c)
	if err != nil {
		return nil, fmt.Errorf("%s: encode catalog: %w", what, err)
	}
	when := store.TimeOrNow(act.Time)
	var versions map[string]int64
	err = s.write(ctx, what, func(tx pgx.Tx) error {
		bump := `UPDATE policies SET version = version + 1 RETURNING org, version`
		var args []any
		if scope != store.ServerScope {
			if err := orgExists(ctx, tx, scope); err != nil {
				return err
			}
			bump = `UPDATE policies SET version = version + 1 WHERE org = $1 RETURNING org, version`
			args = append(args, scope)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO catalogs (scope, catalog, updated_at, updated_by) VALUES ($1, $2, $3, $4)
			ON CONFLICT (scope) DO UPDATE SET catalog = excluded.catalog, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			scope, string(cj), when, act.Actor); err != nil {
			return fmt.Errorf("store catalog: %w", err)
		}
		rows, _ := tx.Query(ctx, bump, args...)
		if versions, err = collectVersions(rows); err != nil {
			return fmt.Errorf("bump policy versions: %w", err)
		}
		if err := notify(ctx, tx, versions); err != nil {
			return err
		}
		if scope != store.ServerScope {
			act.Version = versions[scope]
		}
		return insertActivity(ctx, tx, act, scope)
	})
	if err != nil {
		return nil, err
	}
	return versions, nil
}
