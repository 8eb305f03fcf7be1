package store

import (
	"encoding/json"
	"testing"
)

// errText is err's message, or "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCheckToken(t *testing.T) {
	tests := []struct {
		name string
		tok  Token
		want string
	}{
		{"personal", Token{ID: "t1", Username: "alice", Kind: TokenPersonal, Org: "acme"}, ""},
		{"gateway", Token{ID: "t1", Username: "alice", Kind: TokenGateway}, ""},
		{"session with org", Token{ID: "t1", Username: "alice", Kind: TokenSession, Org: "acme"}, ""},
		{"session without org", Token{ID: "t1", Username: "alice", Kind: TokenSession}, ""},
		{"no ID", Token{Username: "alice", Kind: TokenGateway}, "the token ID is empty"},
		{"no user", Token{ID: "t1", Kind: TokenGateway}, "the token has no user"},
		{"gateway with org", Token{ID: "t1", Username: "alice", Kind: TokenGateway, Org: "acme"},
			`a gateway token belongs to no org, this one names "acme"`},
		{"personal without org", Token{ID: "t1", Username: "alice", Kind: TokenPersonal}, "a personal token needs an org"},
		{"unknown kind", Token{ID: "t1", Username: "alice", Kind: "robot"},
			`token kind "robot" is not one of "personal", "gateway", "session"`},
		{"every problem", Token{},
			"the token ID is empty\nthe token has no user\n" + `token kind "" is not one of "personal", "gateway", "session"`},
	}
	for _, tc := range tests {
		if got := errText(CheckToken(tc.tok)); got != tc.want {
			t.Errorf("%s: CheckToken = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCheckRole(t *testing.T) {
	for role, want := range map[Role]string{
		RoleOwner:  "",
		RoleMember: "",
		"":         `role "" is neither "owner" nor "member"`,
		"admin":    `role "admin" is neither "owner" nor "member"`,
		"Owner":    `role "Owner" is neither "owner" nor "member"`,
	} {
		if got := errText(CheckRole(role)); got != want {
			t.Errorf("CheckRole(%q) = %q, want %q", role, got, want)
		}
	}
}

func TestCheckActivity(t *testing.T) {
	tests := []struct {
		name       string
		act        Activity
		want       string // CheckActivity
		wantAppend string // CheckAppendActivity
	}{
		{"no diff", Activity{Kind: KindSignIn}, "", ""},
		{"valid diff", Activity{Kind: KindPolicyApply, Diff: json.RawMessage(`[{"op":"add"}]`)}, "", ""},
		{"invalid diff", Activity{Kind: KindPolicyApply, Diff: json.RawMessage(`[{`)},
			`activity "policy.apply": diff is not valid JSON`, `activity "policy.apply": diff is not valid JSON`},
		{"no kind", Activity{}, "", "the entry has no kind"},
		{"no kind, invalid diff", Activity{Diff: json.RawMessage(`x`)},
			`activity "": diff is not valid JSON`, "the entry has no kind"},
	}
	for _, tc := range tests {
		if got := errText(CheckActivity(tc.act)); got != tc.want {
			t.Errorf("%s: CheckActivity = %q, want %q", tc.name, got, tc.want)
		}
		if got := errText(CheckAppendActivity(tc.act)); got != tc.wantAppend {
			t.Errorf("%s: CheckAppendActivity = %q, want %q", tc.name, got, tc.wantAppend)
		}
	}
}

func TestCheckNames(t *testing.T) {
	if got := errText(CheckOrgName("")); got != "the name is empty" {
		t.Errorf(`CheckOrgName("") = %q`, got)
	}
	if err := CheckOrgName("acme"); err != nil {
		t.Errorf(`CheckOrgName("acme") = %v`, err)
	}
	if got := errText(CheckUser(User{PasswordHash: "h"})); got != "the username is empty" {
		t.Errorf("CheckUser without username = %q", got)
	}
	if err := CheckUser(User{Username: "alice"}); err != nil {
		t.Errorf("CheckUser(alice) = %v", err)
	}
}
