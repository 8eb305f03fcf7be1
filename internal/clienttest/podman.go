package clienttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Podman runs podman with private storage (vfs under a temporary root), so
// tests neither see nor change the host's images.
type Podman struct {
	dir    string
	env    []string
	global []string // flags before the subcommand
	policy string
}

// NewPodman prepares a private podman for the test. It skips the test
// (fails it in CI) when podman is missing or cannot run here, for example
// without root and without user namespaces.
func NewPodman(t testing.TB) *Podman {
	t.Helper()
	Require(t, "podman")
	dir, err := os.MkdirTemp("", "rwpodman-")
	if err != nil {
		t.Fatalf("podman directory: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove podman directory: %v", err)
		}
	})
	p, err := newPodman(dir)
	if err != nil {
		t.Fatalf("prepare podman: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	if out, err := p.run(ctx, "", "info", "--format", "{{.Store.GraphDriverName}}"); err != nil {
		Unavailable(t, "podman cannot run here (uid %d): %v\n%s", os.Getuid(), err, out)
	} else if got := strings.TrimSpace(out); got != "vfs" {
		t.Fatalf("podman uses storage driver %q, want vfs", got)
	}
	return p
}

func newPodman(dir string) (*Podman, error) {
	p := &Podman{dir: dir}
	for _, sub := range []string{"root", "runroot", "tmp", "conf"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("make podman directory: %w", err)
		}
	}
	cenv, policy, err := writeContainersConfig(filepath.Join(dir, "conf"))
	if err != nil {
		return nil, err
	}
	p.policy = policy
	// storage.conf as well as the flags: the host's storage.conf may name
	// options (mount programs, overlay settings) that vfs does not take.
	storage := filepath.Join(dir, "conf", "storage.conf")
	conf := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "runroot"))
	if err := os.WriteFile(storage, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("write storage.conf: %w", err)
	}
	auth := filepath.Join(dir, "conf", "auth.json")
	if err := os.WriteFile(auth, []byte("{}\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write podman auth file: %w", err)
	}
	p.env = append(cenv, "CONTAINERS_STORAGE_CONF="+storage, "REGISTRY_AUTH_FILE="+auth)
	p.global = []string{
		"--root", filepath.Join(dir, "root"),
		"--runroot", filepath.Join(dir, "runroot"),
		"--tmpdir", filepath.Join(dir, "tmp"),
		"--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
	}
	return p, nil
}

func (p *Podman) run(ctx context.Context, proxyURL string, args ...string) (string, error) {
	env := cleanEnv(containersVars, append(append([]string{}, p.env...), proxyEnv(proxyURL)...)...)
	return run(ctx, env, "podman", append(append([]string{}, p.global...), args...)...)
}

// Pull runs `podman pull ref` with HTTPS_PROXY=proxyURL (empty: no proxy),
// trusting the CA certificates (*.crt) in certDir. It returns the combined
// output, which holds the refusal text when the proxy denies the pull.
func (p *Podman) Pull(ctx context.Context, proxyURL, certDir, ref string) (string, error) {
	args := []string{"pull", "--signature-policy", p.policy}
	if certDir != "" {
		args = append(args, "--cert-dir", certDir)
	}
	return p.run(ctx, proxyURL, append(args, ref)...)
}

// ImageID returns the ID of a local image, or an error if there is none.
func (p *Podman) ImageID(ctx context.Context, ref string) (string, error) {
	out, err := p.run(ctx, "", "image", "inspect", "--format", "{{.Id}}", ref)
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(out))
	}
	return strings.TrimSpace(out), nil
}
