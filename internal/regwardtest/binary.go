package regwardtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// built is the binary of this test binary, made once.
var built struct {
	once sync.Once
	dir  string // removed by Main; empty when $REGWARD_TEST_BINARY names it
	path string
	err  error
}

// Build builds cmd/regward into dir and returns the binary's path. It
// must run inside the regward module, as go test and go run do.
func Build(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("build regward: run from inside the regward module")
	}
	bin := filepath.Join(dir, "regward")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/regward")
	build.Dir = filepath.Dir(mod)
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build regward: %v\n%s", err, out)
	}
	return bin, nil
}

// binary is the regward binary of this test binary: the one named by
// $REGWARD_TEST_BINARY (a CI job that already built it), or cmd/regward
// built once into a temporary directory.
func binary() (string, error) {
	built.once.Do(func() {
		if p := os.Getenv("REGWARD_TEST_BINARY"); p != "" {
			built.path = p
			return
		}
		dir, err := os.MkdirTemp("", "regward-test-")
		if err != nil {
			built.err = fmt.Errorf("build regward: %w", err)
			return
		}
		built.dir = dir
		built.path, built.err = Build(context.Background(), dir)
	})
	return built.path, built.err
}

// Binary returns the path of the regward binary the tests run, building
// it on first use unless Main has; a failed build fails t.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Main builds regward before the tests (exiting 1 when it cannot), runs
// them, then each cleanup (an error fails the run), removes the binary it
// built, and exits. Call it from TestMain:
//
//	func TestMain(m *testing.M) { regwardtest.Main(m) }
func Main(m *testing.M, cleanups ...func() error) {
	if _, err := binary(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		removeBuilt()
		os.Exit(1)
	}
	code := m.Run()
	for _, c := range cleanups {
		if err := c(); err != nil {
			fmt.Fprintln(os.Stderr, "clean up:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	removeBuilt()
	os.Exit(code)
}

func removeBuilt() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}
