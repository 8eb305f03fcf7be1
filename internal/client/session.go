package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Session is a saved sign-in: which server, org and user, and the access
// token. The file is the user's secret: it is written with mode 0600.
type Session struct {
	Server   string    `json:"server"`
	Org      string    `json:"org"`
	Username string    `json:"username"`
	Role     string    `json:"role,omitempty"`
	TokenID  string    `json:"tokenId"`
	Token    string    `json:"token"`
	SignedIn time.Time `json:"signedIn"`
}

// SessionPath is where the session lives: REGWARD_SESSION_FILE, or
// regward/session.json in the user's config directory.
func SessionPath() (string, error) {
	if p := os.Getenv("REGWARD_SESSION_FILE"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config directory: %w", err)
	}
	return filepath.Join(dir, "regward", "session.json"), nil
}

// LoadSession reads the session at path ("" for SessionPath). A missing
// file is an error satisfying errors.Is(err, os.ErrNotExist).
func LoadSession(path string) (Session, error) {
	if path == "" {
		var err error
		if path, err = SessionPath(); err != nil {
			return Session{}, err
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Session{}, err
	}
	var s Session
	if err := json.Unmarshal(data, &s); err != nil {
		return Session{}, fmt.Errorf("session file %s is damaged (%v): run `regward login` again", path, err)
	}
	if s.Server == "" || s.Token == "" {
		return Session{}, fmt.Errorf("session file %s lacks server or token: run `regward login` again", path)
	}
	return s, nil
}

// SaveSession writes s atomically with mode 0600.
func SaveSession(path string, s Session) error {
	if path == "" {
		var err error
		if path, err = SessionPath(); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	return nil
}

// RemoveSession deletes the saved session; a missing one is not an error.
func RemoveSession(path string) error {
	if path == "" {
		var err error
		if path, err = SessionPath(); err != nil {
			return err
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
