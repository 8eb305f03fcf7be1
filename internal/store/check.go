package store

import (
	"encoding/json"
	"errors"
	"fmt"
)

// The checks below run before a backend starts the change they guard, so
// that every backend refuses the same input with the same words. Each
// returns an error without the operation's name; the caller adds it.

// CheckOrgName refuses an org without a name.
func CheckOrgName(name string) error {
	if name == "" {
		return errors.New("the name is empty")
	}
	return nil
}

// CheckUser refuses an account without a username.
func CheckUser(u User) error {
	if u.Username == "" {
		return errors.New("the username is empty")
	}
	return nil
}

// CheckRole refuses a role other than RoleOwner and RoleMember.
func CheckRole(r Role) error {
	if r != RoleOwner && r != RoleMember {
		return fmt.Errorf("role %q is neither %q nor %q", r, RoleOwner, RoleMember)
	}
	return nil
}

// CheckToken refuses a token without an ID or a user, of an unknown kind,
// or whose org does not fit its kind: a personal token names an org, a
// gateway token does not. It reports every problem, not only the first.
func CheckToken(t Token) error {
	var errs []error
	if t.ID == "" {
		errs = append(errs, errors.New("the token ID is empty"))
	}
	if t.Username == "" {
		errs = append(errs, errors.New("the token has no user"))
	}
	switch t.Kind {
	case TokenGateway:
		if t.Org != "" {
			errs = append(errs, fmt.Errorf("a gateway token belongs to no org, this one names %q", t.Org))
		}
	case TokenPersonal:
		if t.Org == "" {
			errs = append(errs, errors.New("a personal token needs an org"))
		}
	case TokenSession:
	default:
		errs = append(errs, fmt.Errorf("token kind %q is not one of %q, %q, %q", t.Kind, TokenPersonal, TokenGateway, TokenSession))
	}
	return errors.Join(errs...)
}

// CheckActivity refuses an entry that could not be stored: one whose Diff
// is not valid JSON. An entry without a kind passes, since it records
// nothing.
func CheckActivity(act Activity) error {
	if len(act.Diff) > 0 && !json.Valid(act.Diff) {
		return fmt.Errorf("activity %q: diff is not valid JSON", act.Kind)
	}
	return nil
}

// CheckAppendActivity checks the entry given to Store.AppendActivity,
// which, unlike the entry that goes with a change, must have a kind.
func CheckAppendActivity(act Activity) error {
	if act.Kind == "" {
		return errors.New("the entry has no kind")
	}
	return CheckActivity(act)
}
