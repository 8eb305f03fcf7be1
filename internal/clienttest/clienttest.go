package clienttest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// defaultTimeout bounds a probe of a client's readiness.
const defaultTimeout = 2 * time.Minute

// InCI reports whether the tests run in CI (CI=true), where real-client
// tests must run rather than skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips the test with the reason, or fails it under CI=true.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("real client unavailable in CI: %s", msg)
	}
	t.Skipf("real client unavailable: %s", msg)
}

// Require returns the path of each binary, or skips the test (fails it in
// CI) when one is missing from PATH.
func Require(t testing.TB, bins ...string) []string {
	t.Helper()
	paths := make([]string, 0, len(bins))
	for _, b := range bins {
		p, err := exec.LookPath(b)
		if err != nil {
			Unavailable(t, "%s is not installed (%v)", b, err)
		}
		paths = append(paths, p)
	}
	return paths
}

// proxyVars are the variables Go, curl and the containers libraries read
// for proxies; a harness removes every one it inherits so that only the
// proxy a test chose is in effect.
var proxyVars = []string{
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
	"http_proxy", "https_proxy", "no_proxy", "all_proxy",
}

// cleanEnv returns os.Environ without the proxy variables, without the
// variables in drop, and with extra appended.
func cleanEnv(drop []string, extra ...string) []string {
	skip := map[string]bool{}
	for _, k := range proxyVars {
		skip[k] = true
	}
	for _, k := range drop {
		skip[k] = true
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !skip[k] {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// proxyEnv sets both spellings so that no inherited lowercase variable
// can win; NO_PROXY is set empty on purpose so nothing bypasses the proxy.
func proxyEnv(proxyURL string) []string {
	if proxyURL == "" {
		return nil
	}
	return []string{
		"HTTPS_PROXY=" + proxyURL, "https_proxy=" + proxyURL,
		"HTTP_PROXY=" + proxyURL, "http_proxy=" + proxyURL,
		"NO_PROXY=", "no_proxy=",
	}
}

// run executes a command and returns its combined output; the error names
// the command (without its environment, which may hold a proxy credential).
func run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return out.String(), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return out.String(), nil
}
