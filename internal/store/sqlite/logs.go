package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/regward/regward/internal/store"
)

// AppendActivity records an entry that is not part of a change (a sign-in,
// a failed sign-in). It needs a kind.
func (s *Store) AppendActivity(ctx context.Context, act store.Activity) error {
	if err := store.CheckAppendActivity(act); err != nil {
		return fmt.Errorf("append activity: %w", err)
	}
	return s.write(ctx, "append activity", func(tx *sql.Tx) error {
		return insertActivity(ctx, tx, act, "")
	})
}

// ListActivity returns entries matching f, newest first. Org "" means every
// org; Since is inclusive, Until exclusive; Limit 0 means 100.
func (s *Store) ListActivity(ctx context.Context, f store.ActivityFilter) ([]store.Activity, error) {
	var w where
	if f.Org != "" {
		w.add(`org = ?`, f.Org)
	}
	if len(f.Kinds) > 0 {
		cond := `kind IN (?`
		for range f.Kinds[1:] {
			cond += `, ?`
		}
		args := make([]any, len(f.Kinds))
		for i, k := range f.Kinds {
			args[i] = k
		}
		w.add(cond+`)`, args...)
	}
	if f.Actor != "" {
		w.add(`actor = ?`, f.Actor)
	}
	addRange(&w, f.Since, f.Until, f.Before)
	rows, err := s.r.QueryContext(ctx, `SELECT id, org, occurred_at, actor, kind, target, summary, diff, version FROM activity`+
		w.String()+` ORDER BY id DESC LIMIT ?`, append(w.args, f.PageSize())...)
	if err != nil {
		return nil, fmt.Errorf("list activity: %w", err)
	}
	defer rows.Close()
	var out []store.Activity
	for rows.Next() {
		var a store.Activity
		var when int64
		var diff sql.NullString
		if err := rows.Scan(&a.ID, &a.Org, &when, &a.Actor, &a.Kind, &a.Target, &a.Summary, &diff, &a.Version); err != nil {
			return nil, fmt.Errorf("list activity: %w", err)
		}
		a.Time = fromMicros(when)
		if diff.Valid {
			a.Diff = json.RawMessage(diff.String)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list activity: %w", err)
	}
	return out, nil
}

func addRange(w *where, since, until time.Time, before int64) {
	if !since.IsZero() {
		w.add(`occurred_at >= ?`, micros(store.CeilMicro(since)))
	}
	if !until.IsZero() {
		w.add(`occurred_at < ?`, micros(store.CeilMicro(until)))
	}
	if before != 0 {
		w.add(`id < ?`, before)
	}
}

// AppendDecisions writes a batch of decisions in one transaction; a zero
// Time means now.
func (s *Store) AppendDecisions(ctx context.Context, ds []store.DecisionRecord) error {
	if len(ds) == 0 {
		return nil
	}
	return s.write(ctx, fmt.Sprintf("append %d decisions", len(ds)), func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO decisions (occurred_at, org, username, host, port, method, action, image, digest,
			category, rule, allowed, reason, gateway) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer st.Close()
		now := time.Now()
		for _, d := range ds {
			when := d.Time
			if when.IsZero() {
				when = now
			}
			if _, err := st.ExecContext(ctx, micros(when), d.Org, d.User, d.Host, d.Port, d.Method, d.Action, d.Image, d.Digest,
				d.Category, d.Rule, d.Allowed, d.Reason, d.Gateway); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListDecisions returns decisions matching f, newest first. Empty string
// fields match everything; Since is inclusive, Until exclusive; Limit 0
// means 100.
func (s *Store) ListDecisions(ctx context.Context, f store.DecisionFilter) ([]store.DecisionRecord, error) {
	var w where
	if f.Org != "" {
		w.add(`org = ?`, f.Org)
	}
	if f.User != "" {
		w.add(`username = ?`, f.User)
	}
	if f.Host != "" {
		w.add(`host = ?`, f.Host)
	}
	if f.Allowed != nil {
		w.add(`allowed = ?`, *f.Allowed)
	}
	addRange(&w, f.Since, f.Until, f.Before)
	rows, err := s.r.QueryContext(ctx, `SELECT id, occurred_at, org, username, host, port, method, action, image, digest,
		category, rule, allowed, reason, gateway FROM decisions`+w.String()+` ORDER BY id DESC LIMIT ?`, append(w.args, f.PageSize())...)
	if err != nil {
		return nil, fmt.Errorf("list decisions: %w", err)
	}
	defer rows.Close()
	var out []store.DecisionRecord
	for rows.Next() {
		var d store.DecisionRecord
		var when int64
		if err := rows.Scan(&d.ID, &when, &d.Org, &d.User, &d.Host, &d.Port, &d.Method, &d.Action, &d.Image, &d.Digest,
			&d.Category, &d.Rule, &d.Allowed, &d.Reason, &d.Gateway); err != nil {
			return nil, fmt.Errorf("list decisions: %w", err)
		}
		d.Time = fromMicros(when)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list decisions: %w", err)
	}
	return out, nil
}

// PruneDecisions deletes decisions older than before and says how many.
func (s *Store) PruneDecisions(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, "prune decisions", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM decisions WHERE occurred_at < ?`, micros(store.CeilMicro(before)))
		if err != nil {
			return err
		}
		n, err = rowsChanged(res)
		return err
	})
	return n, err
}
