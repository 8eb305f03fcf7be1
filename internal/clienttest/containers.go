package clienttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The containers libraries (skopeo, podman) read their configuration from
// /etc/containers unless told otherwise; these files make each run
// independent of the host: no registry mirrors or search lists, and a trust
// policy that accepts unsigned images, which is what a test registry holds.
const (
	acceptAnyPolicy = `{"default":[{"type":"insecureAcceptAnything"}]}` + "\n"
	noRegistries    = "unqualified-search-registries = []\n"
)

// writeContainersConfig writes policy.json, registries.conf and an empty
// containers.conf into dir and returns the environment that points at them.
func writeContainersConfig(dir string) (env []string, policyFile string, err error) {
	files := map[string]string{
		"policy.json":     acceptAnyPolicy,
		"registries.conf": noRegistries,
		"containers.conf": "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return nil, "", fmt.Errorf("write %s: %w", name, err)
		}
	}
	env = []string{
		"CONTAINERS_REGISTRIES_CONF=" + filepath.Join(dir, "registries.conf"),
		"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"),
	}
	return env, filepath.Join(dir, "policy.json"), nil
}

var containersVars = []string{"CONTAINERS_REGISTRIES_CONF", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "REGISTRY_AUTH_FILE"}

// RequireSkopeo skips the test (fails it in CI) when skopeo is missing.
func RequireSkopeo(t testing.TB) { t.Helper(); Require(t, "skopeo") }

// SkopeoCopy runs `skopeo copy src dst` with HTTPS_PROXY=proxyURL (empty:
// no proxy) and trusting the CA certificates (*.crt) in caDir for both
// ends. src and dst are skopeo transport references such as
// docker://allowed.test:5000/app:v1 or dir:/tmp/x. It returns the combined
// output, which holds the refusal text when the proxy denies the copy.
func SkopeoCopy(ctx context.Context, proxyURL, caDir, src, dst string) (string, error) {
	dir, err := os.MkdirTemp("", "rwskopeo-")
	if err != nil {
		return "", fmt.Errorf("skopeo config directory: %w", err)
	}
	defer os.RemoveAll(dir)
	cenv, policyFile, err := writeContainersConfig(dir)
	if err != nil {
		return "", err
	}
	// An empty auth file: a credential of the host's user must not reach
	// the registry or the proxy.
	auth := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(auth, []byte("{}\n"), 0o600); err != nil {
		return "", fmt.Errorf("write skopeo auth file: %w", err)
	}
	env := cleanEnv(containersVars, append(append(cenv, proxyEnv(proxyURL)...), "REGISTRY_AUTH_FILE="+auth)...)
	args := []string{"--policy", policyFile, "copy", "--retry-times", "0"}
	if caDir != "" {
		args = append(args, "--src-cert-dir", caDir, "--dest-cert-dir", caDir)
	}
	args = append(args, src, dst)
	return run(ctx, env, "skopeo", args...)
}
