package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/regward/regward/internal/credential"
	"github.com/regward/regward/internal/store"
)

// MemberInfo is a member as the API shows it.
type MemberInfo struct {
	Username  string     `json:"username"`
	Role      store.Role `json:"role"`
	CreatedAt time.Time  `json:"createdAt"`
	// Password is set only in the answer to adding a new user without one:
	// the generated one-time password, shown once.
	Password string `json:"password,omitempty"`
}

// ListMembers lists org's members; any member may.
func (s *Server) ListMembers(ctx context.Context, who Principal, org string) ([]MemberInfo, error) {
	if who.Org != org {
		return nil, errForbidden(fmt.Sprintf("your token is for organization %q, not %q", who.Org, org))
	}
	ms, err := s.store.ListMembers(ctx, org)
	if err != nil {
		return nil, s.storeErr(err, "organization "+org)
	}
	out := make([]MemberInfo, 0, len(ms))
	for _, m := range ms {
		out = append(out, MemberInfo{Username: m.Username, Role: m.Role, CreatedAt: m.CreatedAt})
	}
	return out, nil
}

func validRole(r store.Role) bool { return r == store.RoleOwner || r == store.RoleMember }

// AddMember adds username to org with role, creating the user when it does
// not exist (with password, or a generated one-time password returned once).
func (s *Server) AddMember(ctx context.Context, who Principal, org, username string, role store.Role, password string) (MemberInfo, error) {
	if !who.Owner(org) {
		return MemberInfo{}, errForbidden(fmt.Sprintf("only owners of organization %s can add members", org))
	}
	var bad []string
	if !usernamePattern.MatchString(username) {
		bad = append(bad, fmt.Sprintf("username %q: use 1-64 lowercase letters, digits, '.', '_' or '-'", username))
	}
	if !validRole(role) {
		bad = append(bad, fmt.Sprintf("role %q: use owner or member", role))
	}
	if password != "" {
		if err := credential.CheckPassword(password); err != nil {
			bad = append(bad, err.Error())
		}
	}
	if len(bad) > 0 {
		return MemberInfo{}, errBadRequest(joinSentences(bad))
	}
	now := s.now()
	info := MemberInfo{Username: username, Role: role, CreatedAt: now}
	_, err := s.store.GetUser(ctx, username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if password == "" {
			password = credential.OneTimePassword()
			info.Password = password
		}
		hash, err := credential.HashPassword(password)
		if err != nil {
			return MemberInfo{}, err
		}
		if err := s.store.CreateUser(ctx, store.User{Username: username, PasswordHash: hash, CreatedAt: now}); err != nil && !errors.Is(err, store.ErrExists) {
			return MemberInfo{}, fmt.Errorf("create user %q: %w", username, err)
		}
	case err != nil:
		return MemberInfo{}, fmt.Errorf("look up user %q: %w", username, err)
	case password != "":
		return MemberInfo{}, errConflict(fmt.Sprintf("user %s already exists: add them without a password; they sign in with their own", username))
	}
	act := store.Activity{Org: org, Time: now, Actor: who.Username, Kind: store.KindMemberAdd, Target: username,
		Summary: fmt.Sprintf("added %s as %s", username, role)}
	if err := s.store.AddMember(ctx, store.Member{Org: org, Username: username, Role: role, CreatedAt: now}, act); err != nil {
		return MemberInfo{}, s.storeErr(err, fmt.Sprintf("member %s of %s", username, org))
	}
	s.log.Info("member added", "org", org, "user", who.Username, "member", username, "role", role)
	return info, nil
}

// SetRole changes a member's role; the last owner cannot be demoted.
func (s *Server) SetRole(ctx context.Context, who Principal, org, username string, role store.Role) error {
	if !who.Owner(org) {
		return errForbidden(fmt.Sprintf("only owners of organization %s can change roles", org))
	}
	if !validRole(role) {
		return errBadRequest(fmt.Sprintf("role %q: use owner or member", role))
	}
	if role == store.RoleMember {
		if err := s.keepAnOwner(ctx, org, username); err != nil {
			return err
		}
	}
	act := store.Activity{Org: org, Time: s.now(), Actor: who.Username, Kind: store.KindMemberUpdate, Target: username,
		Summary: fmt.Sprintf("%s is now %s", username, role)}
	if err := s.store.SetRole(ctx, org, username, role, act); err != nil {
		return s.storeErr(err, fmt.Sprintf("member %s of %s", username, org))
	}
	return nil
}

// RemoveMember removes a member (and so their tokens for the org).
func (s *Server) RemoveMember(ctx context.Context, who Principal, org, username string) error {
	if !who.Owner(org) {
		return errForbidden(fmt.Sprintf("only owners of organization %s can remove members", org))
	}
	if err := s.keepAnOwner(ctx, org, username); err != nil {
		return err
	}
	act := store.Activity{Org: org, Time: s.now(), Actor: who.Username, Kind: store.KindMemberRemove, Target: username,
		Summary: fmt.Sprintf("removed %s", username)}
	if err := s.store.RemoveMember(ctx, org, username, act); err != nil {
		return s.storeErr(err, fmt.Sprintf("member %s of %s", username, org))
	}
	s.tokens.reset() // cached principals may carry the old membership
	return nil
}

// keepAnOwner refuses a change that would leave org without an owner.
func (s *Server) keepAnOwner(ctx context.Context, org, leaving string) error {
	ms, err := s.store.ListMembers(ctx, org)
	if err != nil {
		return s.storeErr(err, "organization "+org)
	}
	owners, isOwner := 0, false
	for _, m := range ms {
		if m.Role == store.RoleOwner {
			owners++
			isOwner = isOwner || m.Username == leaving
		}
	}
	if isOwner && owners == 1 {
		return errConflict(fmt.Sprintf("%s is the last owner of %s; make someone else an owner first", leaving, org))
	}
	return nil
}

func joinSentences(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}

func (s *Server) handleListMembers(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	ms, err := s.ListMembers(r.Context(), p, r.PathValue("org"))
	if err != nil {
		s.logUnexpected(r, err)
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": ms})
}

type addMemberRequest struct {
	Username string     `json:"username"`
	Role     store.Role `json:"role"`
	Password string     `json:"password"`
}

func (s *Server) handleAddMember(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	org := r.PathValue("org")
	if !p.Owner(org) {
		writeError(w, errForbidden(fmt.Sprintf("only owners of organization %s can add members", org)))
		return
	}
	var req addMemberRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Role == "" {
		req.Role = store.RoleMember
	}
	m, err := s.AddMember(r.Context(), p, org, req.Username, req.Role, req.Password)
	if err != nil {
		s.logUnexpected(r, err)
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, m)
}

type setRoleRequest struct {
	Role store.Role `json:"role"`
}

func (s *Server) handleSetRole(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	org := r.PathValue("org")
	if !p.Owner(org) {
		writeError(w, errForbidden(fmt.Sprintf("only owners of organization %s can change roles", org)))
		return
	}
	var req setRoleRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.SetRole(r.Context(), p, org, r.PathValue("username"), req.Role); err != nil {
		s.logUnexpected(r, err)
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"username": r.PathValue("username"), "role": req.Role})
}

func (s *Server) handleRemoveMember(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	if err := s.RemoveMember(r.Context(), p, r.PathValue("org"), r.PathValue("username")); err != nil {
		s.logUnexpected(r, err)
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
