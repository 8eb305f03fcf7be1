package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

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
	created := store.TimeOrNow(act.Time)
	return s.write(ctx, what, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO orgs (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, name, created)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrExists
		}
		if _, err := tx.Exec(ctx, `INSERT INTO policies (org, version, policy, updated_at, updated_by) VALUES ($1, 1, $2, $3, $4)`,
			name, string(pj), created, act.Actor); err != nil {
			return fmt.Errorf("store policy: %w", err)
		}
		if err := notify(ctx, tx, map[string]int64{name: 1}); err != nil {
			return err
		}
		return insertActivity(ctx, tx, act, name)
	})
}

// GetOrg returns an org or ErrNotFound.
func (s *Store) GetOrg(ctx context.Context, name string) (store.Org, error) {
	var created time.Time
	err := s.pool.QueryRow(ctx, `SELECT created_at FROM orgs WHERE name = $1`, name).Scan(&created)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Org{}, fmt.Errorf("org %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.Org{}, fmt.Errorf("get org %q: %w", name, err)
	}
	return store.Org{Name: name, CreatedAt: created.UTC()}, nil
}

// ListOrgs returns every org by name.
func (s *Store) ListOrgs(ctx context.Context) ([]store.Org, error) {
	rows, _ := s.pool.Query(ctx, `SELECT name, created_at FROM orgs ORDER BY name`)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Org, error) {
		var o store.Org
		err := r.Scan(&o.Name, &o.CreatedAt)
		o.CreatedAt = o.CreatedAt.UTC()
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("list orgs: %w", err)
	}
	return out, nil
}

// CreateUser creates an account (CreatedAt now if unset).
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := store.CheckUser(u); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO users (username, password_hash, server_admin, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, u.Username, u.PasswordHash, u.ServerAdmin, store.TimeOrNow(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Username, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("create user %q: %w", u.Username, store.ErrExists)
	}
	return nil
}

// GetUser returns an account or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, username string) (store.User, error) {
	u := store.User{Username: username}
	err := s.pool.QueryRow(ctx, `SELECT password_hash, server_admin, created_at FROM users WHERE username = $1`, username).
		Scan(&u.PasswordHash, &u.ServerAdmin, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.User{}, fmt.Errorf("user %q: %w", username, store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("get user %q: %w", username, err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// SetPassword replaces a user's password hash and records act.
func (s *Store) SetPassword(ctx context.Context, username, hash string, act store.Activity) error {
	what := fmt.Sprintf("set password of user %q", username)
	if err := store.CheckActivity(act); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return s.write(ctx, what, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $1 WHERE username = $2`, hash, username)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
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
	return s.write(ctx, what, func(tx pgx.Tx) error {
		if err := orgExists(ctx, tx, m.Org); err != nil {
			return err
		}
		if err := userExists(ctx, tx, m.Username); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO members (org, username, role, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			m.Org, m.Username, string(m.Role), store.TimeOrNow(m.CreatedAt))
		if err != nil {
			return foreignKeyMissing(err)
		}
		if tag.RowsAffected() == 0 {
			return store.ErrExists
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
	return s.write(ctx, what, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE members SET role = $1 WHERE org = $2 AND username = $3`, string(role), org, username)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("member: %w", store.ErrNotFound)
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
	return s.write(ctx, what, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM members WHERE org = $1 AND username = $2`, org, username)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("member: %w", store.ErrNotFound)
		}
		return insertActivity(ctx, tx, act, org)
	})
}

// GetMember returns a membership or ErrNotFound.
func (s *Store) GetMember(ctx context.Context, org, username string) (store.Member, error) {
	m := store.Member{Org: org, Username: username}
	err := s.pool.QueryRow(ctx, `SELECT role, created_at FROM members WHERE org = $1 AND username = $2`, org, username).
		Scan(&m.Role, &m.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Member{}, fmt.Errorf("member %q of org %q: %w", username, org, store.ErrNotFound)
	}
	if err != nil {
		return store.Member{}, fmt.Errorf("get member %q of org %q: %w", username, org, err)
	}
	m.CreatedAt = m.CreatedAt.UTC()
	return m, nil
}

// ListMembers returns an org's members by username; ErrNotFound if the org
// does not exist.
func (s *Store) ListMembers(ctx context.Context, org string) ([]store.Member, error) {
	ms, err := s.members(ctx, `WHERE org = $1 ORDER BY username`, org)
	if err == nil && len(ms) == 0 {
		err = orgExists(ctx, s.pool, org)
	}
	if err != nil {
		return nil, fmt.Errorf("list members of org %q: %w", org, err)
	}
	return ms, nil
}

// ListUserOrgs returns a user's memberships by org; ErrNotFound if the user
// does not exist.
func (s *Store) ListUserOrgs(ctx context.Context, username string) ([]store.Member, error) {
	ms, err := s.members(ctx, `WHERE username = $1 ORDER BY org`, username)
	if err == nil && len(ms) == 0 {
		err = userExists(ctx, s.pool, username)
	}
	if err != nil {
		return nil, fmt.Errorf("list orgs of user %q: %w", username, err)
	}
	return ms, nil
}

func (s *Store) members(ctx context.Context, tail, arg string) ([]store.Member, error) {
	rows, _ := s.pool.Query(ctx, `SELECT org, username, role, created_at FROM members `+tail, arg)
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Member, error) {
		var m store.Member
		err := r.Scan(&m.Org, &m.Username, &m.Role, &m.CreatedAt)
		m.CreatedAt = m.CreatedAt.UTC()
		return m, err
	})
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
	var org *string
	if t.Org != "" {
		org = &t.Org
	}
	return s.write(ctx, what, func(tx pgx.Tx) error {
		if err := userExists(ctx, tx, t.Username); err != nil {
			return err
		}
		if t.Org != "" {
			if err := orgExists(ctx, tx, t.Org); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO tokens (id, kind, username, org, name, hash, created_at, expires_at, last_used_at, revoked_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
			t.ID, string(t.Kind), t.Username, org, t.Name, hash, store.TimeOrNow(t.CreatedAt), t.ExpiresAt, t.LastUsedAt, t.RevokedAt)
		if err != nil {
			return foreignKeyMissing(err)
		}
		if tag.RowsAffected() == 0 {
			return store.ErrExists
		}
		return insertActivity(ctx, tx, act, t.Org)
	})
}

const tokenColumns = `id, kind, username, COALESCE(org, ''), name, hash, created_at, expires_at, last_used_at, revoked_at`

func scanToken(r pgx.Row) (store.Token, error) {
	var t store.Token
	err := r.Scan(&t.ID, &t.Kind, &t.Username, &t.Org, &t.Name, &t.Hash, &t.CreatedAt, &t.ExpiresAt, &t.LastUsedAt, &t.RevokedAt)
	t.CreatedAt = t.CreatedAt.UTC()
	t.ExpiresAt, t.LastUsedAt, t.RevokedAt = storedPtr(t.ExpiresAt), storedPtr(t.LastUsedAt), storedPtr(t.RevokedAt)
	return t, err
}

// GetToken returns a token by ID or ErrNotFound.
func (s *Store) GetToken(ctx context.Context, id string) (store.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
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
		w.addConst(`org IS NULL`)
	} else {
		w.add(`org = $%d`, org)
	}
	if username != "" {
		w.add(`username = $%d`, username)
	}
	if kind != "" {
		w.add(`kind = $%d`, string(kind))
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens`+w.String()+` ORDER BY created_at, id`, w.args...)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Token, error) { return scanToken(r) })
	if err != nil {
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
	return s.write(ctx, what, func(tx pgx.Tx) error {
		var org string
		var revoked *time.Time
		// FOR UPDATE: of two concurrent revocations, the second sees the first's.
		err := tx.QueryRow(ctx, `SELECT COALESCE(org, ''), revoked_at FROM tokens WHERE id = $1 FOR UPDATE`, id).Scan(&org, &revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil || revoked != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = $1 WHERE id = $2`, at, id); err != nil {
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
	times := make([]time.Time, len(ids))
	for i, id := range ids {
		times[i] = used[id]
	}
	return s.write(ctx, fmt.Sprintf("touch %d tokens", len(ids)), func(tx pgx.Tx) error {
		// Lock the rows in ID order first: batches from two replicas then
		// never wait on each other's locks in a cycle. (LockRows runs above
		// the sort, so the order holds.)
		if _, err := tx.Exec(ctx, `SELECT 1 FROM tokens WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE tokens t SET last_used_at = u.at
			FROM unnest($1::text[], $2::timestamptz[]) AS u (id, at)
			WHERE t.id = u.id AND (t.last_used_at IS NULL OR t.last_used_at < u.at)`, ids, times)
		return err
	})
}
