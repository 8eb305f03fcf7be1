package gateway

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/regward/regward/internal/policy"
)

// snapshotCache keeps the last snapshot of each org in a directory, one
// file per org, so that a restarted gateway enforces what it had until the
// TTL runs out even when no control plane answers.
type snapshotCache struct {
	dir string
}

// cacheFile is the content of DIR/ORG.json.
type cacheFile struct {
	FetchedAt time.Time   `json:"fetchedAt"` // when the control plane last confirmed it
	Snapshot  snapshotDoc `json:"snapshot"`
}

type cacheEntry struct {
	doc     snapshotDoc
	fetched time.Time
}

func openSnapshotCache(dir string) (*snapshotCache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot cache: %w", err)
	}
	// Leftovers of a write interrupted by a crash.
	if tmps, err := filepath.Glob(filepath.Join(dir, "*.tmp")); err == nil {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	return &snapshotCache{dir: dir}, nil
}

// load reads every usable snapshot; unreadable files are logged and skipped.
func (c *snapshotCache) load(log *slog.Logger) []cacheEntry {
	files, err := filepath.Glob(filepath.Join(c.dir, "*.json"))
	if err != nil {
		log.Warn("list policy snapshot cache", "dir", c.dir, "err", err)
		return nil
	}
	var out []cacheEntry
	for _, name := range files {
		org := strings.TrimSuffix(filepath.Base(name), ".json")
		if !policy.ValidOrgName(org) {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			log.Warn("read cached policy snapshot", "file", name, "err", err)
			continue
		}
		var cf cacheFile
		if err := json.Unmarshal(data, &cf); err != nil {
			log.Warn("cached policy snapshot is corrupt", "file", name, "err", err)
			continue
		}
		if cf.Snapshot.Org != org || cf.Snapshot.Version <= 0 || cf.FetchedAt.IsZero() {
			log.Warn("cached policy snapshot does not match its file name", "file", name, "org", cf.Snapshot.Org)
			continue
		}
		out = append(out, cacheEntry{doc: cf.Snapshot, fetched: cf.FetchedAt})
	}
	return out
}

// store replaces an org's file atomically: a crash leaves the old file or
// the new one, never half of one.
func (c *snapshotCache) store(doc snapshotDoc, fetched time.Time) error {
	if !policy.ValidOrgName(doc.Org) {
		return fmt.Errorf("not caching a snapshot of %q: not an organization name", doc.Org)
	}
	data, err := json.Marshal(cacheFile{FetchedAt: fetched.UTC(), Snapshot: doc})
	if err != nil {
		return fmt.Errorf("encode snapshot of %s: %w", doc.Org, err)
	}
	tmp, err := os.CreateTemp(c.dir, doc.Org+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("cache snapshot of %s: %w", doc.Org, err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(c.dir, doc.Org+".json"))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cache snapshot of %s: %w", doc.Org, err)
	}
	return nil
}
