// Package store defines regward's persistent state and the interface that
// every storage backend (store/sqlite, store/postgres) implements. The
// conformance suite in store/storetest is the executable form of this
// contract: every backend must pass it unchanged.
//
// store knows policy and nothing else of regward; servers know store.
package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/regward/regward/internal/policy"
)

// Role of a user in an org.
type Role string

const (
	RoleOwner  Role = "owner"
	RoleMember Role = "member"
)

// Org is an organization.
type Org struct {
	Name      string
	CreatedAt time.Time
}

// User is an account. PasswordHash is an encoded argon2id hash.
type User struct {
	Username     string
	PasswordHash string
	ServerAdmin  bool // may change server-wide settings (the shipped catalog defaults) and create gateway tokens
	CreatedAt    time.Time
}

// Member is a user's membership in an org.
type Member struct {
	Org       string
	Username  string
	Role      Role
	CreatedAt time.Time
}

// TokenKind tells a personal access token from a gateway token.
type TokenKind string

const (
	TokenPersonal TokenKind = "personal" // one user in one org
	TokenGateway  TokenKind = "gateway"  // reads every org's policy; Org is empty
	TokenSession  TokenKind = "session"  // a console sign-in session
)

// Token is an access token. The secret itself is never stored: Hash is the
// SHA-256 of the full token string.
type Token struct {
	ID         string // public, unique; part of the token string
	Kind       TokenKind
	Username   string
	Org        string // empty for gateway tokens
	Name       string
	Hash       []byte
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// PolicyRecord is an org's current policy and its version. The version goes
// up by one with every Save & Apply and every change of the org's catalog.
type PolicyRecord struct {
	Org       string
	Version   int64
	Policy    policy.Policy
	UpdatedAt time.Time
	UpdatedBy string
}

// Activity kinds.
const (
	KindPolicyApply   = "policy.apply"
	KindCatalogUpdate = "catalog.update"
	KindOrgCreate     = "org.create"
	KindMemberAdd     = "member.add"
	KindMemberUpdate  = "member.update"
	KindMemberRemove  = "member.remove"
	KindUserPassword  = "user.password"
	KindTokenCreate   = "token.create"
	KindTokenRevoke   = "token.revoke"
	KindSignIn        = "signin"
	KindSignInFailed  = "signin.failed"
)

// Activity is one entry of an org's activity log. Diff holds the
// []policy.Change of a policy apply (JSON), or nil.
type Activity struct {
	ID      int64
	Org     string
	Time    time.Time
	Actor   string
	Kind    string
	Target  string // what was changed: a username, a token ID, "policy", ...
	Summary string
	Diff    json.RawMessage
	Version int64 // policy version after a policy.apply or catalog.update
}

// ActivityToRecord returns act as a backend records it with a change to
// org ("" for a change outside any org): an entry without an org takes org.
// ok is false for an entry without a kind, which records nothing.
func ActivityToRecord(act Activity, org string) (rec Activity, ok bool) {
	if act.Kind == "" {
		return Activity{}, false
	}
	if act.Org == "" {
		act.Org = org
	}
	return act, true
}

// ActivityFilter selects activity entries, newest first. Before is a cursor:
// only IDs below it (0: no cursor).
type ActivityFilter struct {
	Org    string
	Kinds  []string
	Actor  string
	Since  time.Time
	Until  time.Time
	Before int64
	Limit  int
}

// PageSize is the number of entries the listing returns at most: Limit, or
// DefaultLimit when Limit is not positive.
func (f ActivityFilter) PageSize() int { return pageSize(f.Limit) }

// DefaultLimit is the page size of a listing whose filter sets no Limit.
const DefaultLimit = 100

func pageSize(limit int) int {
	if limit <= 0 {
		return DefaultLimit
	}
	return limit
}

// DecisionRecord is one gateway decision in the decision log.
type DecisionRecord struct {
	ID       int64     `json:"id,omitempty"`
	Time     time.Time `json:"time"`
	Org      string    `json:"org"`
	User     string    `json:"user,omitempty"`
	Host     string    `json:"host"`
	Port     int       `json:"port,omitempty"`
	Method   string    `json:"method,omitempty"`
	Action   string    `json:"action,omitempty"`
	Image    string    `json:"image,omitempty"`
	Digest   string    `json:"digest,omitempty"`
	Category string    `json:"category,omitempty"`
	Rule     string    `json:"rule"`
	Allowed  bool      `json:"allowed"`
	Reason   string    `json:"reason,omitempty"`
	Gateway  string    `json:"gateway,omitempty"` // which gateway instance decided
}

// DecisionFilter selects decision log entries, newest first.
type DecisionFilter struct {
	Org     string
	User    string
	Host    string
	Allowed *bool
	Since   time.Time
	Until   time.Time
	Before  int64
	Limit   int
}

// PageSize is the number of entries the listing returns at most: Limit, or
// DefaultLimit when Limit is not positive.
func (f DecisionFilter) PageSize() int { return pageSize(f.Limit) }

// Catalog scopes: the server-wide defaults, or one org's additions.
const ServerScope = ""

// Store is regward's persistent state. Every change that users make takes an
// Activity, written in the same transaction as the change.
//
// Rules every backend follows (storetest checks them):
//   - An Activity with an empty Kind records nothing; AppendActivity refuses
//     one. A Diff must be valid JSON.
//   - ApplyPolicy and an org-scope SetCatalog write the new version into the
//     activity; an activity without Org gets the org the change is about.
//     A ServerScope SetCatalog writes one activity, not one per org.
//   - CreateOrg takes CreatedAt and the policy's UpdatedAt from act.Time.
//   - Listings: Org "" means every org; Since is inclusive, Until exclusive;
//     Limit 0 means 100; results are newest first by ID. Catalog lists come
//     back empty, never nil.
//   - ListMembers and GetCatalog return ErrNotFound for a missing org,
//     ListUserOrgs for a missing user.
//   - RevokeToken of a revoked token does nothing and records nothing.
//   - TouchTokens never moves a last use backwards and skips unknown IDs.
//   - A personal token names an org; a gateway token does not.
type Store interface {
	Ping(ctx context.Context) error
	Close() error

	// CreateOrg creates an org with its first policy at version 1.
	CreateOrg(ctx context.Context, name string, initial policy.Policy, act Activity) error
	GetOrg(ctx context.Context, name string) (Org, error)
	ListOrgs(ctx context.Context) ([]Org, error)

	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, username string) (User, error)
	// SetPassword replaces a user's password hash and records act.
	SetPassword(ctx context.Context, username, hash string, act Activity) error

	AddMember(ctx context.Context, m Member, act Activity) error                      // ErrExists
	SetRole(ctx context.Context, org, username string, role Role, act Activity) error // ErrNotFound
	RemoveMember(ctx context.Context, org, username string, act Activity) error       // ErrNotFound
	GetMember(ctx context.Context, org, username string) (Member, error)
	ListMembers(ctx context.Context, org string) ([]Member, error)
	ListUserOrgs(ctx context.Context, username string) ([]Member, error)

	CreateToken(ctx context.Context, t Token, act Activity) error // ErrExists on ID
	GetToken(ctx context.Context, id string) (Token, error)
	// ListTokens lists tokens of a kind in an org (all users when username is empty).
	ListTokens(ctx context.Context, org, username string, kind TokenKind) ([]Token, error)
	RevokeToken(ctx context.Context, id string, at time.Time, act Activity) error
	// TouchTokens records last use; it is called in batches off the hot path.
	TouchTokens(ctx context.Context, used map[string]time.Time) error

	GetPolicy(ctx context.Context, org string) (PolicyRecord, error)
	// ApplyPolicy replaces the org's policy if its version is still
	// expectVersion (else ErrConflict) and returns the new record.
	ApplyPolicy(ctx context.Context, org string, p policy.Policy, expectVersion int64, act Activity) (PolicyRecord, error)
	// PolicyVersions returns every org's current version.
	PolicyVersions(ctx context.Context) (map[string]int64, error)

	// GetCatalog returns the namespace lists of a scope (ServerScope or an org);
	// an unset scope yields empty lists (the server scope is seeded from
	// policy.DefaultCatalog at first run).
	GetCatalog(ctx context.Context, scope string) (policy.Catalog, error)
	// SetCatalog replaces a scope's lists and bumps the policy version of
	// every org it affects (all orgs for ServerScope), returning the new versions.
	SetCatalog(ctx context.Context, scope string, c policy.Catalog, act Activity) (map[string]int64, error)

	AppendActivity(ctx context.Context, act Activity) error
	ListActivity(ctx context.Context, f ActivityFilter) ([]Activity, error)

	AppendDecisions(ctx context.Context, ds []DecisionRecord) error
	ListDecisions(ctx context.Context, f DecisionFilter) ([]DecisionRecord, error)
	PruneDecisions(ctx context.Context, before time.Time) (int64, error)
}

// Watcher is implemented by stores shared between several control-plane
// replicas: it reports every policy version change committed by any replica.
// fn is called from one goroutine; after a reconnect the store calls resync
// so that the caller re-reads PolicyVersions for changes it may have missed.
type Watcher interface {
	WatchPolicies(ctx context.Context, fn func(org string, version int64), resync func()) error
}
