package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// CreateOrg creates an org at the time of act (now if unset) with its
// first policy at version 1.
func (s *Store) CreateOrg(ctx context.Context, name string, initial policy.Policy, act store.Activity) error {
	what := fmt.Sprintf("create org %q", name)
	if err := store.CheckOrgName(name); err != nil {
		return fmt.Errorf("create org: %w", err)
	}
	if err := store.CheckActivity(act); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	pj, err := store.EncodePolicy(initial)
	if err != nil {
		return fmt.Errorf("%s: encode policy: %w", what, err)
	}
	created := micros(store.TimeOrNow(act.Time))
	return s.write(ctx, what, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO orgs (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING`, name, created)
		if err != nil {
			return err
		}
		if n, err := rowsChanged(res); err != nil || n == 0 {
			return errors.Join(err, store.ErrExists)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO policies (org, version, policy, updated_at, updated_by) VALUES (?, 1, ?, ?, ?)`,
			name, string(pj), created, act.Actor); err != nil {
			return fmt.Errorf("store policy: %w", err)
		}
		return insertActivity(ctx, tx, act, name)
	})
}

// GetOrg returns an org or ErrNotFound.
func (s *Store) GetOrg(ctx context.Context, name string) (store.Org, error) {
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT created_at FROM orgs WHERE name = ?`, name).Scan(&created)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Org{}, fmt.Errorf("org %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.Org{}, fmt.Errorf("get org %q: %w", name, err)
	}
	return store.Org{Name: name, CreatedAt: fromMicros(created)}, nil
}

// ListOrgs returns every org by name.
func (s *Store) ListOrgs(ctx context.Context) ([]store.Org, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, created_at FROM orgs ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	defer rows.Close()
	var out []store.Org
	for rows.Next() {
		var o store.Org
		var created int64
		if err := rows.Scan(&o.Name, &created); err != nil {
			return nil, fmt.Errorf("list orgs: %w", err)
		}
		o.CreatedAt = fromMicros(created)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	return out, nil
}

// CreateUser creates an account (CreatedAt now if unset).
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := store.CheckUser(u); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	what := fmt.Sprintf("create user %q", u.Username)
	return s.write(ctx, what, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users (username, password_hash, server_admin, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, u.Username, u.PasswordHash, u.ServerAdmin, micros(store.TimeOrNow(u.CreatedAt)))
		if err != nil {
			return err
		}
		if n, err := rowsChanged(res); err != nil || n == 0 {
			return errors.Join(err, store.ErrExists)
		}
		return nil
	})
}

// GetUser returns an account or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, username string) (store.User, error) {
	u := store.User{Username: username}
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT password_hash, server_admin, created_at FROM users WHERE username = ?`, username).
		Scan(&u.PasswordHash, &u.ServerAdmin, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, fmt.Errorf("user %q: %w", username, store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("get user %q: %w", username, err)
	}
	u.CreatedAt = fromMicros(created)
	return u, nil
}

// SetPassword replaces a user's password hash and records act.
func (s *Store) SetPassword(ctx context.Context, username, hash string, act store.Activity) error {
	what := fmt.Sprintf("set password of user %q", username)
	if err := store.CheckActivity(act); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return s.write(ctx, what, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE username = ?`, hash, username)
		if err != nil {
			return err
		}
		if n, err := rowsChanged(res); err != nil || n == 0 {
			return errors.Join(err, store.ErrNotFound)
		}
		return insertActivity(ctx, tx, act, "")
	})
}

// AddMember adds a user to an org: ErrNotFound if either is missing,
// ErrExists if the user is already a member.
func (s *Store) AddMember(ctx context.Context, m store.Member, act store.Activity) error {
	what := fmt.Sprintf("add member %q to org %q", m.Username, m.Org)
	if err := errors.Join(store.CheckRole(m.Role), store.CheckActivity(act)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return s.write(ctx, what, func(tx *sql.Tx) error {
		if err := orgExists(ctx, tx, m.Org); err != nil {
			return err
		}
		if err := userExists(ctx, tx, m.Username); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO members (org, username, role, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			m.Org, m.Username, string(m.Role), micros(store.TimeOrNow(m.CreatedAt)))
		if err != nil {
			return err
		}
		if n, err := rowsChanged(res); err != nil || n == 0 {
			return errors.Join(err, store.ErrExists)
		}
		return insertActivity(ctx, tx, act, m.Org)
	})
}

// SetRole changes a member's role: ErrNotFound if not a member.
func (s *Store) SetRole(ctx context.Context, org, username string, role store.Role, act store.Activity) error {
	what := fmt.Sprintf("set role of %q in org %q", username, org)
	if err := errors.Join(store.CheckRole(role), store.CheckActivity(act)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return s.write(ctx, what, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE members SET role = ? WHERE org = ? AND username = ?`, string(role), org, username)
		if err != nil {
			return err
		}
		if n, err := rowsChanged(res); err != nil || n == 0 {
			return errors.Join(err, fmt.Errorf("member: %w", store.ErrNotFound))
		}
		return insertActivity(ctx, tx, act, org)
	})
}

// RemoveMember removes a user from an org (the account stays).
func (s *Store) RemoveMember(ctx context.Context, org, username string, act store.Activity) error {
	what := fmt.Sprintf("remove member %q from org %q", username, org)
	if err := store.CheckActivity(act); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return s.write(ctx, what, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM members WHERE org = ? AND username = ?`, org, username)
		if err != nil {
			return err
		}
		if n, err := rowsChanged(res); err != nil || n == 0 {
			return errors.Join(err, fmt.Errorf("member: %w", store.ErrNotFound))
		}
		return insertActivity(ctx, tx, act, org)
	})
}

// GetMember returns a membership or ErrNotFound.
func (s *Store) GetMember(ctx context.Context, org, username string) (store.Member, error) {
	m := store.Member{Org: org, Username: username}
	var role string
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT role, created_at FROM members WHERE org = ? AND username = ?`, org, username).Scan(&role, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Member{}, fmt.Errorf("member %q of org %q: %w", username, org, store.ErrNotFound)
	}
	if err != nil {
		return store.Member{}, fmt.Errorf("get member %q of org %q: %w", username, org, err)
	}
	m.Role, m.CreatedAt = store.Role(role), fromMicros(created)
	return m, nil
}

// ListMembers returns an org's members by username; ErrNotFound if the org
// does not exist.
func (s *Store) ListMembers(ctx context.Context, org string) ([]store.Member, error) {
	ms, err := s.members(ctx, `WHERE org = ? ORDER BY username`, org)
	if err == nil && len(ms) == 0 {
		err = orgExists(ctx, s.r, org)
	}
	if err != nil {
		return nil, fmt.Errorf("list members of org %q: %w", org, err)
	}
	return ms, nil
}

// ListUserOrgs returns a user's memberships by org; ErrNotFound if the user
// does not exist.
func (s *Store) ListUserOrgs(ctx context.Context, username string) ([]store.Member, error) {
	ms, err := s.members(ctx, `WHERE username = ? ORDER BY org`, username)
	if err == nil && len(ms) == 0 {
		err = userExists(ctx, s.r, username)
	}
	if err != nil {
		return nil, fmt.Errorf("list orgs of user %q: %w", username, err)
	}
	return ms, nil
}

func (s *Store) members(ctx context.Context, tail string, arg string) ([]store.Member, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT org, username, role, created_at FROM members `+tail, arg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Member
	for rows.Next() {
		var m store.Member
		var role string
		var created int64
		if err := rows.Scan(&m.Org, &m.Username, &role, &created); err != nil {
			return nil, err
		}
		m.Role, m.CreatedAt = store.Role(role), fromMicros(created)
		out = append(out, m)
	}
	return out, rows.Err()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateToken stores a token: ErrExists on a used ID, ErrNotFound when its
// user or org does not exist.
func (s *Store) CreateToken(ctx context.Context, t store.Token, act store.Activity) error {
	what := fmt.Sprintf("create token %q", t.ID)
	if err := errors.Join(store.CheckToken(t), store.CheckActivity(act)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	hash := t.Hash
	if hash == nil {
		hash = []byte{}
	}
	return s.write(ctx, what, func(tx *sql.Tx) error {
		if err := userExists(ctx, tx, t.Username); err != nil {
			return err
		}
		if t.Org != "" {
			if err := orgExists(ctx, tx, t.Org); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO tokens (id, kind, username, org, name, hash, created_at, expires_at, last_used_at, revoked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			t.ID, string(t.Kind), t.Username, nullString(t.Org), t.Name, hash, micros(store.TimeOrNow(t.CreatedAt)),
			nullMicros(t.ExpiresAt), nullMicros(t.LastUsedAt), nullMicros(t.RevokedAt))
		if err != nil {
			return err
		}
		if n, err := rowsChanged(res); err != nil || n == 0 {
			return errors.Join(err, store.ErrExists)
		}
		return insertActivity(ctx, tx, act, t.Org)
	})
}

const tokenColumns = `id, kind, username, COALESCE(org, ''), name, hash, created_at, expires_at, last_used_at, revoked_at`

func scanToken(sc interface{ Scan(...any) error }) (store.Token, error) {
	var t store.Token
	var kind string
	var created int64
	var expires, used, revoked sql.NullInt64
	if err := sc.Scan(&t.ID, &kind, &t.Username, &t.Org, &t.Name, &t.Hash, &created, &expires, &used, &revoked); err != nil {
		return store.Token{}, err
	}
	t.Kind, t.CreatedAt = store.TokenKind(kind), fromMicros(created)
	t.ExpiresAt, t.LastUsedAt, t.RevokedAt = fromNullMicros(expires), fromNullMicros(used), fromNullMicros(revoked)
	return t, nil
}

// GetToken returns a token by ID or ErrNotFound.
func (s *Store) GetToken(ctx context.Context, id string) (store.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Token{}, fmt.Errorf("token %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("get token %q: %w", id, err)
	}
	return t, nil
}

// ListTokens lists an org's tokens (org "" for gateway tokens) of a kind
// (any when empty), of one user or all, oldest first.
func (s *Store) ListTokens(ctx context.Context, org, username string, kind store.TokenKind) ([]store.Token, error) {
	var w where
	if org == "" {
		w.add(`org IS NULL`)
	} else {
		w.add(`org = ?`, org)
	}
	if username != "" {
		w.add(`username = ?`, username)
	}
	if kind != "" {
		w.add(`kind = ?`, string(kind))
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens`+w.String()+` ORDER BY created_at, id`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("list tokens of org %q: %w", org, err)
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens of org %q: %w", org, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens of org %q: %w", org, err)
	}
	return out, nil
}

// RevokeToken marks a token revoked at at. Revoking a revoked token keeps
// the first time and records nothing, since nothing changed.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time, act store.Activity) error {
	what := fmt.Sprintf("revoke token %q", id)
	if err := store.CheckActivity(act); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return s.write(ctx, what, func(tx *sql.Tx) error {
		var org string
		var revoked sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT COALESCE(org, ''), revoked_at FROM tokens WHERE id = ?`, id).Scan(&org, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil || revoked.Valid {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ?`, micros(at), id); err != nil {
			return err
		}
		return insertActivity(ctx, tx, act, org)
	})
}

// TouchTokens records last use; a time older than the stored one is
// ignored (batches from several replicas arrive in any order), and so are
// IDs of tokens that no longer exist.
func (s *Store) TouchTokens(ctx context.Context, used map[string]time.Time) error {
	if len(used) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(used))
	return s.write(ctx, fmt.Sprintf("touch %d tokens", len(ids)), func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `UPDATE tokens SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, id := range ids {
			if _, err := st.ExecContext(ctx, micros(used[id]), id); err != nil {
				return fmt.Errorf("token %q: %w", id, err)
			}
		}
		return nil
	})
}
