package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// GetPolicy returns an org's current policy or ErrNotFound.
func (s *Store) GetPolicy(ctx context.Context, org string) (store.PolicyRecord, error) {
	rec := store.PolicyRecord{Org: org}
	var pj string
	var updated int64
	err := s.r.QueryRowContext(ctx, `SELECT version, policy, updated_at, updated_by FROM policies WHERE org = ?`, org).
		Scan(&rec.Version, &pj, &updated, &rec.UpdatedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return store.PolicyRecord{}, fmt.Errorf("policy of org %q: %w", org, store.ErrNotFound)
	}
	if err != nil {
		return store.PolicyRecord{}, fmt.Errorf("get policy of org %q: %w", org, err)
	}
	if rec.Policy, err = store.DecodePolicy([]byte(pj)); err != nil {
		return store.PolicyRecord{}, fmt.Errorf("decode policy of org %q: %w", org, err)
	}
	rec.UpdatedAt = fromMicros(updated)
	return rec, nil
}

// ApplyPolicy replaces the org's policy if its version is still
// expectVersion. The update's WHERE clause carries the check, so two
// applies of the same version cannot both succeed.
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
	err = s.write(ctx, what, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE policies SET version = version + 1, policy = ?, updated_at = ?, updated_by = ?
			WHERE org = ? AND version = ?`, string(pj), micros(when), act.Actor, org, expectVersion)
		if err != nil {
			return err
		}
		n, err := rowsChanged(res)
		if err != nil {
			return err
		}
		if n == 0 {
			return versionMismatch(ctx, tx, org, expectVersion)
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
func versionMismatch(ctx context.Context, tx *sql.Tx, org string, expect int64) error {
	var cur int64
	err := tx.QueryRowContext(ctx, `SELECT version FROM policies WHERE org = ?`, org).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("org %q: %w", org, store.ErrNotFound)
	}
	if err != nil {
		return err
	}
	return store.VersionConflict(cur, expect)
}

// PolicyVersions returns every org's current version.
func (s *Store) PolicyVersions(ctx context.Context) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT org, version FROM policies`)
	if err != nil {
		return nil, fmt.Errorf("list policy versions: %w", err)
	}
	return scanVersions(rows)
}

func scanVersions(rows *sql.Rows) (map[string]int64, error) {
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var org string
		var v int64
		if err := rows.Scan(&org, &v); err != nil {
			return nil, fmt.Errorf("policy versions: %w", err)
		}
		out[org] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("policy versions: %w", err)
	}
	return out, nil
}

// GetCatalog returns the lists of a scope, empty when the scope has none;
// ErrNotFound for an org that does not exist.
func (s *Store) GetCatalog(ctx context.Context, scope string) (policy.Catalog, error) {
	var cj string
	err := s.r.QueryRowContext(ctx, `SELECT catalog FROM catalogs WHERE scope = ?`, scope).Scan(&cj)
	if errors.Is(err, sql.ErrNoRows) {
		if scope != store.ServerScope {
			if err := orgExists(ctx, s.r, scope); err != nil {
				return policy.Catalog{}, fmt.Errorf("get catalog: %w", err)
			}
		}
		return store.EmptyCatalog(), nil
	}
	if err != nil {
		return policy.Catalog{}, fmt.Errorf("get catalog of scope %q: %w", scope, err)
	}
	c, err := store.DecodeCatalog([]byte(cj))
	if err != nil {
		return policy.Catalog{}, fmt.Errorf("decode catalog of scope %q: %w", scope, err)
	}
	return c, nil
}

// SetCatalog replaces a scope's lists and bumps the policy version of every
// org they affect, in one transaction with act. For an org scope, act
// records the org's new version.
func (s *Store) SetCatalog(ctx context.Context, scope string, c policy.Catalog, act store.Activity) (map[string]int64, error) {
	what := fmt.Sprintf("set catalog of scope %q", scope)
	if err := store.CheckActivity(act); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	cj, err := store.EncodeCatalog(c)
	if err != nil {
		return nil, fmt.Errorf("%s: encode catalog: %w", what, err)
	}
	when := micros(store.TimeOrNow(act.Time))
	var versions map[string]int64
	err = s.write(ctx, what, func(tx *sql.Tx) error {
		bump := `UPDATE policies SET version = version + 1 RETURNING org, version`
		args := []any{}
		if scope != store.ServerScope {
			if err := orgExists(ctx, tx, scope); err != nil {
				return err
			}
			bump = `UPDATE policies SET version = version + 1 WHERE org = ? RETURNING org, version`
			args = append(args, scope)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO catalogs (scope, catalog, updated_at, updated_by) VALUES (?, ?, ?, ?)
			ON CONFLICT (scope) DO UPDATE SET catalog = excluded.catalog, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			scope, string(cj), when, act.Actor); err != nil {
			return fmt.Errorf("store catalog: %w", err)
		}
		rows, err := tx.QueryContext(ctx, bump, args...)
		if err != nil {
			return fmt.Errorf("bump policy versions: %w", err)
		}
		if versions, err = scanVersions(rows); err != nil {
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
