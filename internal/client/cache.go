package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/regward/regward/internal/policy"
)

// CacheDirEnv overrides where regward keeps cached policy snapshots.
const CacheDirEnv = "REGWARD_CACHE_DIR"

// CacheDir is REGWARD_CACHE_DIR, or regward in the user's cache directory.
func CacheDir() (string, error) {
	if d := os.Getenv(CacheDirEnv); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the user cache directory: %w", err)
	}
	return filepath.Join(d, "regward"), nil
}

// CachedSnapshot is a snapshot as kept on disk with when the control
// plane last confirmed it: the agent enforces it while the control plane
// is out of reach, until it is older than the TTL.
//
// The layout (DIR/ORG.json holding {"fetchedAt", "snapshot"}) is the one
// the gateway's Follower keeps, so that the agent's Follower, given
// SnapshotCache.Dir as its cache directory, starts from what `regward
// login` fetched, and `regward check` reads what the agent keeps fresh.
type CachedSnapshot struct {
	FetchedAt time.Time `json:"fetchedAt"`
	Snapshot  Snapshot  `json:"snapshot"`
}

// Compile compiles the cached policy for local decisions.
func (c CachedSnapshot) Compile() (*policy.Compiled, error) {
	return policy.Compile(c.Snapshot.Policy, c.Snapshot.Catalog)
}

// SnapshotCache stores one snapshot per control plane and org under
// Root/SERVER/ORG/ORG.json: a directory of its own per org, so that the
// Follower given it follows that org only (a personal token reads no other).
type SnapshotCache struct {
	Root string // "": CacheDir()/snapshots
}

// Dir is the directory of one org's snapshot on one control plane.
func (c SnapshotCache) Dir(server, org string) (string, error) {
	if !orgName.MatchString(org) {
		return "", fmt.Errorf("organization %q is not a valid name", org)
	}
	root := c.Root
	if root == "" {
		base, err := CacheDir()
		if err != nil {
			return "", err
		}
		root = filepath.Join(base, "snapshots")
	}
	return filepath.Join(root, serverKey(server), org), nil
}

func (c SnapshotCache) path(server, org string) (string, error) {
	dir, err := c.Dir(server, org)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, org+".json"), nil
}

// serverKey names a control plane's cache directory after its scheme,
// host, port and path, so that the same org name on two installations
// never mixes.
func serverKey(server string) string {
	u, err := url.Parse(strings.TrimRight(server, "/"))
	if err != nil || u.Host == "" {
		return "invalid"
	}
	key := u.Scheme + "_" + u.Host + u.Path
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '_'
	}, key)
}

// Load returns the cached snapshot of org on server; a missing one is an
// error satisfying errors.Is(err, os.ErrNotExist).
func (c SnapshotCache) Load(server, org string) (CachedSnapshot, error) {
	p, err := c.path(server, org)
	if err != nil {
		return CachedSnapshot{}, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return CachedSnapshot{}, err
	}
	var cs CachedSnapshot
	if err := json.Unmarshal(data, &cs); err != nil {
		return CachedSnapshot{}, fmt.Errorf("cached policy %s is damaged: %w", p, err)
	}
	if cs.Snapshot.Org != org || cs.Snapshot.Version <= 0 || cs.FetchedAt.IsZero() {
		return CachedSnapshot{}, fmt.Errorf("cached policy %s is not a snapshot of organization %s", p, org)
	}
	return cs, nil
}

// Save writes a snapshot of server atomically, mode 0600.
func (c SnapshotCache) Save(server string, cs CachedSnapshot) error {
	p, err := c.path(server, cs.Snapshot.Org)
	if err != nil {
		return err
	}
	cs.FetchedAt = cs.FetchedAt.UTC()
	data, err := json.Marshal(cs)
	if err != nil {
		return err
	}
	if err := writeAtomic(p, data, 0o600); err != nil {
		return fmt.Errorf("cache policy: %w", err)
	}
	return nil
}

// Remove deletes the cached snapshot of org on server, if any.
func (c SnapshotCache) Remove(server, org string) error {
	p, err := c.path(server, org)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// writeAtomic writes data to path through a temporary file and a rename,
// creating the directory (0700) when needed.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
