package credential

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"
)

// TokenPrefix starts every regward access token, so that secret scanners and
// people can recognise one.
const TokenPrefix = "rw_"

const (
	tokenIDLen     = 12
	tokenSecretLen = 32
	alphabet       = "abcdefghijklmnopqrstuvwxyz0123456789" // no case: tokens survive case-folding tools
)

// ErrMalformedToken is returned for a string that is not a regward token.
var ErrMalformedToken = errors.New("not a regward access token")

// NewToken returns a fresh token string, its public ID, and the hash to store.
// The token string is shown to its owner once and never stored.
func NewToken() (token, id string, hash []byte) {
	id = randomString(tokenIDLen)
	token = TokenPrefix + id + "_" + randomString(tokenSecretLen)
	return token, id, HashToken(token)
}

// TokenID extracts the public ID from a token string, checking its shape.
func TokenID(token string) (string, error) {
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok || len(rest) != tokenIDLen+1+tokenSecretLen || rest[tokenIDLen] != '_' {
		return "", ErrMalformedToken
	}
	for i := 0; i < len(rest); i++ {
		if i == tokenIDLen {
			continue
		}
		if !strings.ContainsRune(alphabet, rune(rest[i])) {
			return "", ErrMalformedToken
		}
	}
	return rest[:tokenIDLen], nil
}

// HashToken is the stored form of a token: tokens carry 165 bits of entropy,
// so a fast hash is enough (no password stretching needed).
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// TokenMatches compares a presented token with a stored hash in constant time.
func TokenMatches(token string, hash []byte) bool {
	return subtle.ConstantTimeCompare(HashToken(token), hash) == 1
}

func randomString(n int) string {
	// Rejection sampling keeps every character equally likely.
	out := make([]byte, 0, n)
	buf := make([]byte, n*2)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic("crypto/rand failed: " + err.Error()) // never happens on supported platforms
		}
		for _, b := range buf {
			if int(b) < 252 { // 252 = 7*36: keeps the distribution uniform
				out = append(out, alphabet[int(b)%len(alphabet)])
				if len(out) == n {
					break
				}
			}
		}
	}
	return string(out)
}
