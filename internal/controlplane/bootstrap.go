package controlplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regward/regward/internal/credential"
	"github.com/regward/regward/internal/policy"
	"github.com/regward/regward/internal/store"
)

// AdminUser is the first owner created on an empty data directory.
const AdminUser = "admin"

// FirstRun is what Bootstrap created; zero when the store was not empty.
type FirstRun struct {
	Created  bool
	Org      string
	Password string // generated one-time password ("" when one was given)
	Token    string // the owner access token for automation
}

// Bootstrap sets up an empty store: the org, its owner "admin" (a server
// admin) with password (generated when empty), the server-wide namespace
// catalog, and an owner access token. A store that already has orgs is left
// as it is.
func Bootstrap(ctx context.Context, st store.Store, s *Server, org, password string) (FirstRun, error) {
	orgs, err := st.ListOrgs(ctx)
	if err != nil {
		return FirstRun{}, fmt.Errorf("list orgs: %w", err)
	}
	if len(orgs) > 0 {
		return FirstRun{}, nil
	}
	if !orgPattern.MatchString(org) {
		return FirstRun{}, fmt.Errorf("organization name %q: use 1-63 lowercase letters, digits, '-' or '_'", org)
	}
	fr := FirstRun{Created: true, Org: org}
	if password == "" {
		password = credential.OneTimePassword()
		fr.Password = password
	} else if err := credential.CheckPassword(password); err != nil {
		return FirstRun{}, fmt.Errorf("REGWARD_ADMIN_PASSWORD: %w", err)
	}
	hash, err := credential.HashPassword(password)
	if err != nil {
		return FirstRun{}, err
	}
	now := time.Now()
	if err := st.CreateUser(ctx, store.User{Username: AdminUser, PasswordHash: hash, ServerAdmin: true, CreatedAt: now}); err != nil && !errors.Is(err, store.ErrExists) {
		return FirstRun{}, fmt.Errorf("create user %s: %w", AdminUser, err)
	}
	if _, err := st.SetCatalog(ctx, store.ServerScope, policy.DefaultCatalog(), store.Activity{}); err != nil {
		return FirstRun{}, fmt.Errorf("seed namespace catalog: %w", err)
	}
	if err := CreateOrgWithOwner(ctx, st, org, AdminUser, "regward", now); err != nil {
		if errors.Is(err, store.ErrExists) {
			// Another replica on the same database bootstrapped first.
			return FirstRun{}, nil
		}
		return FirstRun{}, err
	}
	tok, err := s.IssueToken(ctx, "regward", AdminUser, org, store.TokenPersonal, "admin-token (first run)", 0)
	if err != nil {
		return FirstRun{}, err
	}
	fr.Token = tok.Token
	return fr, nil
}

// CreateOrgWithOwner creates org with the default policy and makes owner its
// first owner, both on record as done by actor.
func CreateOrgWithOwner(ctx context.Context, st store.Store, org, owner, actor string, now time.Time) error {
	act := store.Activity{Org: org, Time: now, Actor: actor, Kind: store.KindOrgCreate, Target: org,
		Summary: "organization created with the default policy", Version: 1}
	if err := st.CreateOrg(ctx, org, policy.Default(org), act); err != nil {
		return fmt.Errorf("create org %q: %w", org, err)
	}
	mact := store.Activity{Org: org, Time: now, Actor: actor, Kind: store.KindMemberAdd, Target: owner,
		Summary: fmt.Sprintf("added %s as owner", owner)}
	if err := st.AddMember(ctx, store.Member{Org: org, Username: owner, Role: store.RoleOwner, CreatedAt: now}, mact); err != nil {
		return fmt.Errorf("make %s owner of %q: %w", owner, org, err)
	}
	return nil
}
