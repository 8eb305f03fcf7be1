package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/regward/regward/internal/store"
)

// AppendActivity records an entry that is not part of a change (a sign-in,
// a failed sign-in). It needs a kind.
func (s *Store) AppendActivity(ctx context.Context, act store.Activity) error {
	if err := store.CheckAppendActivity(act); err != nil {
		return fmt.Errorf("append activity: %w", err)
	}
	return s.write(ctx, "append activity", func(tx pgx.Tx) error {
		return insertActivity(ctx, tx, act, "")
	})
}

// ListActivity returns entries matching f, newest first. Org "" means every
// org; Since is inclusive, Until exclusive; Limit 0 means 100.
func (s *Store) ListActivity(ctx context.Context, f store.ActivityFilter) ([]store.Activity, error) {
	var w where
	if f.Org != "" {
		w.add(`org = $%d`, f.Org)
	}
	if len(f.Kinds) > 0 {
		w.add(`kind = ANY($%d)`, f.Kinds)
	}
	if f.Actor != "" {
		w.add(`actor = $%d`, f.Actor)
	}
	addRange(&w, f.Since, f.Until, f.Before)
	q := `SELECT id, org, occurred_at, actor, kind, target, summary, diff::text, version FROM activity` +
		w.String() + ` ORDER BY id DESC` + w.limitClause(f.PageSize())
	rows, _ := s.pool.Query(ctx, q, w.args...)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Activity, error) {
		var a store.Activity
		var diff *string
		err := r.Scan(&a.ID, &a.Org, &a.Time, &a.Actor, &a.Kind, &a.Target, &a.Summary, &diff, &a.Version)
		a.Time = a.Time.UTC()
		if diff != nil {
			a.Diff = []byte(*diff)
		}
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("list activity: %w", err)
	}
	return out, nil
}

func addRange(w *where, since, until time.Time, before int64) {
	if !since.IsZero() {
		w.add(`occurred_at >= $%d`, store.CeilMicro(since))
	}
	if !until.IsZero() {
		w.add(`occurred_at < $%d`, store.CeilMicro(until))
	}
	if before != 0 {
		w.add(`id < $%d`, before)
	}
}

var decisionColumns = []string{"occurred_at", "org", "username", "host", "port", "method", "action", "image", "digest",
	"category", "rule", "allowed", "reason", "gateway"}

// AppendDecisions writes a batch of decisions with COPY, in one
// transaction; a zero Time means now.
func (s *Store) AppendDecisions(ctx context.Context, ds []store.DecisionRecord) error {
	if len(ds) == 0 {
		return nil
	}
	now := time.Now()
	src := pgx.CopyFromSlice(len(ds), func(i int) ([]any, error) {
		d := ds[i]
		when := d.Time
		if when.IsZero() {
			when = now
		}
		return []any{when, d.Org, d.User, d.Host, d.Port, d.Method, d.Action, d.Image, d.Digest,
			d.Category, d.Rule, d.Allowed, d.Reason, d.Gateway}, nil
	})
	// CopyFrom on the pool runs as a single statement, which is atomic.
	if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{"decisions"}, decisionColumns, src); err != nil {
		return fmt.Errorf("append %d decisions: %w", len(ds), err)
	}
	return nil
}

// ListDecisions returns decisions matching f, newest first. Empty string
// fields match everything; Since is inclusive, Until exclusive; Limit 0
// means 100.
func (s *Store) ListDecisions(ctx context.Context, f store.DecisionFilter) ([]store.DecisionRecord, error) {
	var w where
	if f.Org != "" {
		w.add(`org = $%d`, f.Org)
	}
	if f.User != "" {
		w.add(`username = $%d`, f.User)
	}
	if f.Host != "" {
		w.add(`host = $%d`, f.Host)
	}
	if f.Allowed != nil {
		w.add(`allowed = $%d`, *f.Allowed)
	}
	addRange(&w, f.Since, f.Until, f.Before)
	q := `SELECT id, occurred_at, org, username, host, port, method, action, image, digest, category, rule, allowed, reason, gateway
		FROM decisions` + w.String() + ` ORDER BY id DESC` + w.limitClause(f.PageSize())
	rows, _ := s.pool.Query(ctx, q, w.args...)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.DecisionRecord, error) {
		var d store.DecisionRecord
		err := r.Scan(&d.ID, &d.Time, &d.Org, &d.User, &d.Host, &d.Port, &d.Method, &d.Action, &d.Image, &d.Digest,
			&d.Category, &d.Rule, &d.Allowed, &d.Reason, &d.Gateway)
		d.Time = d.Time.UTC()
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list decisions: %w", err)
	}
	return out, nil
}

// PruneDecisions deletes decisions older than before and says how many.
func (s *Store) PruneDecisions(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM decisions WHERE occurred_at < $1`, store.CeilMicro(before))
	if err != nil {
		return 0, fmt.Errorf("prune decisions: %w", err)
	}
	return tag.RowsAffected(), nil
}
