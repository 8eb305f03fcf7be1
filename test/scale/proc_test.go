package scale

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/regward/regward/internal/pgtest"
	"github.com/regward/regward/internal/regwardtest"
)

// TestMain builds regward once (or takes $REGWARD_TEST_BINARY) and, as
// pgtest.Main, stops the shared PostgreSQL server after the tests.
func TestMain(m *testing.M) { regwardtest.Main(m, pgtest.StopShared) }

// requireEnv skips the test with reason, or fails it under CI=true.
func requireEnv(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("required in CI: %s", msg)
	}
	t.Skipf("skipping: %s", msg)
}

// startProcess is regwardtest.Start with the process named in messages.
func startProcess(t *testing.T, name string, env []string, args ...string) *regwardtest.Process {
	t.Helper()
	p := regwardtest.Start(t, env, args...)
	p.Name = name
	return p
}

// testContext is a context bounded by d and by the test's deadline.
func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	if dl, ok := t.Deadline(); ok {
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, dl.Add(-5*time.Second))
		prev := cancel
		cancel = func() { c2(); prev() }
	}
	t.Cleanup(cancel)
	return ctx
}
