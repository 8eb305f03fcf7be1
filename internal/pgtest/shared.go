package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// shared is the one server of a test binary, started by the first DSN call.
var shared struct {
	once sync.Once
	mu   sync.Mutex
	srv  *Server
	err  error
}

func sharedServer() (*Server, error) {
	shared.once.Do(func() {
		srv, err := Start("")
		shared.mu.Lock()
		shared.srv, shared.err = srv, err
		shared.mu.Unlock()
	})
	shared.mu.Lock()
	defer shared.mu.Unlock()
	return shared.srv, shared.err
}

// Require skips the test (or fails it when CI=true) if PostgreSQL is not
// installed, and returns the shared server, starting it on first use. A
// server that is installed but fails to start always fails the test.
func Require(t testing.TB) *Server {
	t.Helper()
	srv, err := sharedServer()
	if errors.Is(err, ErrUnavailable) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required in CI: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatalf("start the shared PostgreSQL server: %v", err)
	}
	return srv
}

// DSN returns the DSN of a new, empty database on the shared server; the
// database is dropped when the test ends.
func DSN(t testing.TB) string {
	t.Helper()
	srv := Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name, dsn, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.DropDatabase(ctx, name); err != nil {
			t.Errorf("clean up: %v", err)
		}
	})
	return dsn
}

// Main runs a test binary's tests and then stops the shared server; call
// it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if err := StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// StopShared stops the shared server if it was started.
func StopShared() error {
	shared.mu.Lock()
	srv := shared.srv
	shared.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Stop()
}
