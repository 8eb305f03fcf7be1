package credential

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not argon2id PHC", h)
	}
	if err := VerifyPassword(h, "correct horse battery staple"); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if err := VerifyPassword(h, "correct horse battery stapl"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong password: got %v, want ErrMismatch", err)
	}
	h2, _ := HashPassword("correct horse battery staple")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

func TestVerifyPasswordRejectsBadHashes(t *testing.T) {
	for _, enc := range []string{
		"", "plain", "$argon2i$v=19$m=65536,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=18$m=65536,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=0,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=65536,t=1,p=1$!!$a2V5",
	} {
		err := VerifyPassword(enc, "x")
		if err == nil || errors.Is(err, ErrMismatch) {
			t.Errorf("VerifyPassword(%q) = %v, want a format error", enc, err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	if CheckPassword("short") == nil {
		t.Error("short password accepted")
	}
	if CheckPassword(strings.Repeat("a", MaxPasswordLength+1)) == nil {
		t.Error("over-long password accepted")
	}
	if err := CheckPassword(OneTimePassword()); err != nil {
		t.Errorf("generated password refused: %v", err)
	}
}

func TestToken(t *testing.T) {
	tok, id, hash := NewToken()
	if !strings.HasPrefix(tok, "rw_") {
		t.Fatalf("token %q lacks prefix", tok)
	}
	got, err := TokenID(tok)
	if err != nil || got != id {
		t.Fatalf("TokenID(%q) = %q, %v; want %q", tok, got, err, id)
	}
	if !TokenMatches(tok, hash) {
		t.Fatal("token does not match its own hash")
	}
	other, _, _ := NewToken()
	if TokenMatches(other, hash) {
		t.Fatal("another token matches")
	}
	for _, bad := range []string{"", "rw_", tok[:len(tok)-1], strings.ToUpper(tok), "xx" + tok[2:], strings.Replace(tok, "_", "-", 2), tok + "a"} {
		if _, err := TokenID(bad); err == nil {
			t.Errorf("TokenID(%q) accepted", bad)
		}
	}
}

func FuzzTokenID(f *testing.F) {
	tok, _, _ := NewToken()
	f.Add(tok)
	f.Add("rw_")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := TokenID(s)
		if err == nil && !strings.HasPrefix(s, TokenPrefix+id+"_") {
			t.Fatalf("TokenID(%q) = %q not a prefix", s, id)
		}
	})
}
